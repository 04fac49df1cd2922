"""Event handlers of the builder service (adapters only)."""
