"""HTTP routes of the builder service (adapters only: parse, call a service, map the result)."""
