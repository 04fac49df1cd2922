"""Use cases of the deployer service; each owns its unit of work."""
