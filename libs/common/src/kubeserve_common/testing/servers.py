"""Run an ASGI app under a real uvicorn server on 127.0.0.1, on a thread with its own loop."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from kubeserve_common.net import free_port

__all__ = ["free_port", "serve_app"]


@contextlib.contextmanager
def serve_app(app: Any, *, port: int | None = None, startup_timeout: float = 60) -> Iterator[str]:
    """Yield the base URL of `app` served by uvicorn; stop it (running its shutdown) on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on port {port} did not start in {startup_timeout}s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
