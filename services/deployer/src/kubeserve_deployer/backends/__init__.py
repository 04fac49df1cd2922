"""Runtime backends: where a deployment's replicas run, each a package behind the RuntimeBackend
port (adapters/runtime_backend.py). Only the composition root (bootstrap.py) picks one."""
