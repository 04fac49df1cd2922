"""KubeServe deployer: deployments and the worker that drives a runtime backend."""
