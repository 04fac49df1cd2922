"""KubeServe registry: models, versions and their artifacts in object storage."""
