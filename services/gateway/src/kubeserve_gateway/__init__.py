"""KubeServe gateway: the only public HTTP entry (authentication, rate limits, proxying to the
internal services and to model runtimes)."""
