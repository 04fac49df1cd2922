"""`python -m kubeserve_cli` is the `kubeserve` command."""

from kubeserve_cli.main import main

main()
