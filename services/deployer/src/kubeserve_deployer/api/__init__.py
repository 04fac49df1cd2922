"""HTTP routes of the deployer service (adapters only: parse, call a service, map the result)."""
