"""The kubernetes runtime backend: per-tenant namespaces and one Helm release of
charts/model-serving per deployment, driven by the holder of a Lease.

Modules: `settings` (the backend's configuration, `KUBESERVE_K8S_*`), `tenancy` and `release`
(pure: the tenant's objects, a release's values, reading a rollout), `cluster` and `helm` (the
ports to the Kubernetes API and helm, with their adapters), `tenants` (namespaces),
`artifacts` (presigned URLs per revision), `leader` (Lease election), `backend` (the
RuntimeBackend), `factory` (building it from settings). Nothing here is imported by the
deployer's services: they see the RuntimeBackend port only.
"""
