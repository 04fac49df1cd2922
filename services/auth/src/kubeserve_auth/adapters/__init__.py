"""Ports and adapters of the auth service to external systems."""
