"""Ports and adapters of the deployer service to external systems."""
