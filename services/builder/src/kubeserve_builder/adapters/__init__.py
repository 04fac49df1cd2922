"""Ports and adapters of the builder service to external systems."""
