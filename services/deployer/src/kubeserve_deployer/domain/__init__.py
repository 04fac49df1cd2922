"""Domain model of the deployer service: plain objects and errors, no I/O."""
