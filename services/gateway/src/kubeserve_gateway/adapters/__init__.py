"""Ports and adapters of the gateway service to external systems."""
