"""Use cases of the builder service; each owns its unit of work."""
