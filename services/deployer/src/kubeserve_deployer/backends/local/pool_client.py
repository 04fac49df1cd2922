"""Client of the warm pool (`python -m kubeserve_runtime.pool`): starts it, speaks its
newline-delimited JSON protocol over the child's stdin/stdout, restarts it when it dies.

The deployer only launches the pool as a subprocess; it never imports the runtime (which would
pull pickle/joblib into a control-plane process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from kubeserve_deployer.backends.local.settings import LocalBackendSettings

log = logging.getLogger(__name__)


def _open_log(path: Path) -> Any:
    return open(path, "ab")


MAX_FAILURES = 5  # pool starts/crashes before the backend stops trying it


class PoolUnavailable(Exception):
    """The pool is not running or did not answer in time; the caller falls back."""


class WarmPool:
    def __init__(
        self, config: LocalBackendSettings, log_path: Path, *, env: dict[str, str]
    ) -> None:
        self.python = config.runtime_python
        self.log_path = log_path
        self.env = env  # the pool's children inherit it: never the deployer's secrets
        self.start_timeout = config.pool_start_timeout
        self.request_timeout = config.pool_request_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._next_id = 0
        self._starting: asyncio.Task[None] | None = None
        self.import_ms: float | None = None
        self.failures = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def ready(self) -> bool:
        return (
            self._proc is not None
            and self._proc.returncode is None
            and self._ready is not None
            and self._ready.done()
            and not self._ready.cancelled()
            and self._ready.exception() is None
        )

    def start(self) -> None:
        """Launch the pool in the background (its imports take a second or more)."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._launch())

    def ensure_running(self) -> None:
        """Relaunch a pool that exited, unless it keeps failing (then the plain-process
        fallback serves every start and the pool log says why)."""
        if self.ready or (self._starting is not None and not self._starting.done()):
            return
        if self._proc is not None and self._proc.returncode is not None:
            log.warning("warm pool exited with %s; relaunching", self._proc.returncode)
            self.failures += 1
            self._proc = None
        if self.failures >= MAX_FAILURES:
            return
        self.start()

    async def _launch(self) -> None:
        await self._terminate()
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with _open_log(self.log_path) as err:
            self._proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "kubeserve_runtime.pool",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                # Its own session: a Ctrl-C meant for `kubeserve up` reaches the deployer, which
                # then closes the pool in order; replicas are in sessions of their own anyway.
                start_new_session=True,
                env=self.env,
            )
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), self.start_timeout)  # type: ignore[union-attr]
            hello = json.loads(line) if line else {}
            if hello.get("event") != "ready":
                raise PoolUnavailable(f"pool did not start (see {self.log_path})")
            self.import_ms = float(hello.get("import_ms", 0.0))
            self._ready.set_result(hello)
            log.info("warm pool ready", extra={"pid": self._proc.pid, "import_ms": self.import_ms})
        except (TimeoutError, ValueError, PoolUnavailable) as exc:
            self.failures += 1
            log.warning("warm pool failed to start: %s", exc)
            self._ready.set_exception(PoolUnavailable(str(exc)))
            self._ready.exception()  # retrieved: no "never retrieved" warning
            await self._terminate()

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait
        if self._ready is None:
            return False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        return self.ready

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the reply; `PoolUnavailable` when the pool cannot."""
        if not self.ready:
            raise PoolUnavailable("warm pool is not ready")
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        async with self._lock:  # the protocol is strictly one request, one reply, in order
            self._next_id += 1
            message = {**message, "id": self._next_id}
            try:
                proc.stdin.write((json.dumps(message) + "\n").encode())
                await asyncio.wait_for(proc.stdin.drain(), self.request_timeout)
                line = await asyncio.wait_for(proc.stdout.readline(), self.request_timeout)
            except (OSError, TimeoutError) as exc:
                await self._broken(f"{type(exc).__name__}: {exc}")
                raise PoolUnavailable(f"warm pool did not answer: {exc}") from exc
            if not line:
                await self._broken("closed its output")
                raise PoolUnavailable("warm pool exited")
            reply: dict[str, Any] = json.loads(line)
            if reply.get("id") != message["id"]:
                await self._broken("answered out of order")
                raise PoolUnavailable("warm pool protocol error")
            return reply

    async def spawn(self, **fields: Any) -> tuple[int, float]:
        """Fork a replica; returns (pid, fork round trip in ms)."""
        started = time.perf_counter()
        reply = await self.request({"op": "spawn", **fields})
        if not reply.get("ok"):
            raise PoolUnavailable(f"warm pool refused: {reply.get('error')}")
        return int(reply["pid"]), (time.perf_counter() - started) * 1000

    async def _broken(self, why: str) -> None:
        self.failures += 1
        log.warning("warm pool broken (%s); restarting it", why)
        await self._terminate()
        self.start()

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        # Closing stdin asks the pool to exit; its replicas (own sessions) keep running.
        with contextlib.suppress(Exception):
            if proc.stdin:
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 3)

    async def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        await self._terminate()
