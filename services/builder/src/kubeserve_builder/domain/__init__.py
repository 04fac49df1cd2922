"""Domain model of the builder service: plain objects and errors, no I/O."""
