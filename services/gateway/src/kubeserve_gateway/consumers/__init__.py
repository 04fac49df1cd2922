"""Event handlers of the gateway service (adapters only)."""
