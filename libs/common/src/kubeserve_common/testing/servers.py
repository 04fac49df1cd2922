"""Run an ASGI app under a real uvicorn server on 127.0.0.1, on a thread with its own loop; wait
for a server process a test started to answer."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from kubeserve_common.net import free_port

__all__ = ["free_port", "serve_app", "wait_until_ready"]


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


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, *, timeout: float = 120
) -> None:
    """Poll GET `url` until it answers 200. Fails at once, with its output, when `process` (the
    server a test started) exits first; `timeout` only bounds a hang, it measures nothing."""
    import httpx  # test-only: the module is imported by suites that may lack it otherwise

    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(
                f"the server exited ({process.returncode}) before ready:\n{output}"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout:g}s")
        time.sleep(0.2)
