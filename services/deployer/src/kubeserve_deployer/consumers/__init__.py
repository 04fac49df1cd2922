"""Event handlers of the deployer service (adapters only)."""
