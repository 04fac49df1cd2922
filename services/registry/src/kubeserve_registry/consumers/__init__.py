"""Event handlers of the registry (adapters: decode the payload, call one service method)."""
