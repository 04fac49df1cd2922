"""Domain model of the registry service: plain objects and errors, no I/O."""
