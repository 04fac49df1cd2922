"""Ports and adapters of the registry service to external systems."""
