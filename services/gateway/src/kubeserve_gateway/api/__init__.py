"""HTTP routes of the gateway service (adapters only: parse, call a service, map the result)."""
