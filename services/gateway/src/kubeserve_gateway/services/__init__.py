"""Use cases of the gateway service; each owns its unit of work."""
