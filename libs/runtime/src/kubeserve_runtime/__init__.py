"""KubeServe model runtime: loads one model and serves it over OIP V2 and a simple /predict."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_app", "load_model", "signature"]


def __getattr__(name: str) -> object:
    # Lazy: `python -m kubeserve_runtime.requirements` (run by start.sh before the server)
    # must not pay for importing numpy, pandas and FastAPI.
    if name == "create_app":
        from kubeserve_runtime.app import create_app

        return create_app
    if name in ("load_model", "signature"):
        from kubeserve_runtime import loaders

        return getattr(loaders, name)
    raise AttributeError(name)
