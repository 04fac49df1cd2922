"""Domain model of the auth service: plain objects and errors, no I/O."""
