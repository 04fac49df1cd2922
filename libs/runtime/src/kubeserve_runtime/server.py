"""Start the runtime's app with uvicorn: the one place both entry points (the command line,
`python -m kubeserve_runtime`, and the warm pool's forked replicas) configure the server."""

from __future__ import annotations

from typing import Any


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    graceful_seconds: int = 10,
) -> None:
    """Serve `app` until SIGTERM/SIGINT. One process per replica: scaling adds replicas, not
    uvicorn workers."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        ws="none",  # the runtime has no websocket routes; skips importing a protocol stack
        timeout_graceful_shutdown=graceful_seconds,
    )
