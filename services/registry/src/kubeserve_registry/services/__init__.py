"""Use cases of the registry; each owns its unit of work."""
