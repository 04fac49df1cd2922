"""The `kubeserve` command: the embedded platform (`kubeserve up`) and the client commands."""
