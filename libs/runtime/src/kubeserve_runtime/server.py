"""Start the runtime's app with uvicorn: the one place both entry points (the command line,
`python -m kubeserve_runtime`, and the warm pool's forked replicas) configure the server."""

from __future__ import annotations

import os
from typing import Any


def listen_options(host: str, port: int) -> dict[str, Any]:
    """Where uvicorn listens: the inherited listening socket of a sandboxed replica (created by
    its launcher before confinement; the replica itself has no network), else host:port."""
    from kubeserve_runtime.sandbox.spec import LISTEN_FD_ENV

    fd = os.environ.get(LISTEN_FD_ENV)
    if fd:
        return {"fd": int(fd)}
    return {"host": host, "port": port}


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    graceful_seconds: int = 10,
    **uvicorn_options: Any,
) -> None:
    """Serve `app` until SIGTERM/SIGINT. One process per replica: scaling adds replicas, not
    uvicorn workers. `uvicorn_options` (e.g. `log_config=None`) go to `uvicorn.run`."""
    import uvicorn

    uvicorn.run(
        app,
        **listen_options(host, port),
        log_level=log_level.lower(),
        access_log=False,
        ws="none",  # the runtime has no websocket routes; skips importing a protocol stack
        timeout_graceful_shutdown=graceful_seconds,
        **uvicorn_options,
    )
