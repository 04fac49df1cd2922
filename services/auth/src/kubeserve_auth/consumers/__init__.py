"""Event handlers of the auth service (adapters only)."""
