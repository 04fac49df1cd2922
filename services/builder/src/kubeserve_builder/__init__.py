"""KubeServe builder: validates uploaded versions in a sandbox and plans their dependencies."""
