"""HTTP routes of the auth service (adapters only: parse, call a service, map the result)."""
