"""Domain model of the gateway service: plain objects and errors, no I/O."""
