"""HTTP routes of the registry service (adapters only: parse, call a service, map the result)."""
