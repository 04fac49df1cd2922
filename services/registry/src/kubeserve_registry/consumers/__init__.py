"""Event handlers of the registry service (adapters only)."""
