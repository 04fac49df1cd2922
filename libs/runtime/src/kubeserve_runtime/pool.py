"""Warm pool (fork server) for fast replica cold starts: `python -m kubeserve_runtime.pool`.

The deployer's local backend starts this process once. It imports the heavy runtime stack
(numpy, pandas, scikit-learn, joblib, FastAPI, uvicorn, the runtime app) up front, then, per
request, forks a child that only has to load the model and start serving - tens of
milliseconds instead of the second a fresh interpreter spends on imports.

Protocol: newline-delimited JSON on stdin/stdout, one reply per request, in order.

    -> (on start)     {"event": "ready", "pid": 123, "import_ms": 850.1}
    <- {"id": 1, "op": "ping"}
    -> {"id": 1, "ok": true, "pid": 123, "children": [456]}
    <- {"id": 2, "op": "spawn", "model": "/cache/x/model.joblib", "name": "iris",
        "version": "v1", "port": 40001, "deployment_id": "...", "log": "/path/replica.log",
        "pidfile": "/path/replica.pid", "timings": "/path/replica.timings.json",
        "env": {"KEY": "value"}, "sandbox": {SandboxSpec as JSON} (optional)}
    -> {"id": 2, "ok": true, "pid": 456, "fork_ms": 2.3}
    -> {"id": 3, "ok": false, "error": "..."}        (any failed request)

The child calls `setsid()`, so it is in a session of its own and survives the pool and the
deployer (a deployer restart re-adopts it); it writes `pidfile` ({"pid", "port",
"start_time"}) before loading anything, and `timings` ({"load_ms", "app_ms"}) once the model is
loaded. The pool exits when its stdin closes (its deployer went away); children stay.

With `sandbox`, the child confines itself after the fork (`sandbox.core.enter`: namespaces, a
new root with only the spec's binds, no network, limits, an unprivileged uid, no capabilities,
seccomp) and only then loads the model - whose path is then the one inside the sandbox - and
serves on the listening Unix socket the spec names (created before confinement). The imports
stay shared with the pool, so confinement costs milliseconds, not an interpreter start.
Replies go to a private duplicate of stdout: anything a library prints lands on stderr instead
of corrupting the protocol.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any, TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # as `python -m kubeserve_runtime`

# Single-threaded numerical libraries in the pool: forking a process whose BLAS thread pool is
# running is unsafe, and each replica is one of several processes sharing the host's cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

PRELOAD = (
    "numpy",
    "pandas",
    "joblib",
    "sklearn",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "sklearn.tree",
    "sklearn.ensemble",
    "sklearn.svm",
    "sklearn.neighbors",
    "fastapi",
    "uvicorn",
    "uvicorn.config",
    "uvicorn.server",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "kubeserve_runtime.app",
    "kubeserve_runtime.loaders",
    "kubeserve_runtime.server",
)


def preload() -> list[str]:
    """Import what a replica needs; a module that is not installed is simply not preloaded."""
    import importlib

    loaded = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # optional extras (uvloop, httptools) may be missing
            print(f"pool: not preloaded {name}: {exc}", file=sys.stderr)
    warm_up()
    return loaded


def warm_up() -> None:
    """Build (and drop) one app around a trivial model: FastAPI imports more lazily on the first
    route it builds (pydantic compatibility layers), which would otherwise cost every child."""
    try:
        import numpy as np
        import uvicorn
        from sklearn.dummy import DummyClassifier

        from kubeserve_runtime.app import create_app

        model = DummyClassifier(strategy="most_frequent").fit(np.zeros((2, 1)), [0, 1])
        # Config.load() imports the protocol and lifespan classes a server picks at startup.
        uvicorn.Config(create_app(model, "warm-up"), ws="none", log_config=None).load()
    except Exception as exc:
        print(f"pool: warm-up skipped: {exc}", file=sys.stderr)


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat): with the
    pid it identifies a process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def run_replica(request: dict[str, Any], timings_fd: int | None = None) -> None:
    """In the child: load the model and serve it until SIGTERM (never returns normally)."""
    from kubeserve_runtime.app import create_app
    from kubeserve_runtime.loaders import load_model
    from kubeserve_runtime.server import serve

    # What `kubeserve logs` shows: timestamped lines (its `since` reads them), the model's load
    # and the server's start included; predictions are not logged (no access log).
    level = str(request.get("log_level") or "info").upper()
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    started = time.perf_counter()
    model = load_model(request["model"])
    loaded = time.perf_counter()
    logging.getLogger("kubeserve_runtime").info(
        "model %s:%s loaded from %s in %.2fs",
        request["name"],
        request.get("version") or "v1",
        request["model"],
        loaded - started,
    )
    app = create_app(
        model,
        request["name"],
        request.get("version") or "v1",
        deployment_id=request.get("deployment_id") or None,
    )
    built = time.perf_counter()
    timings = {"load_ms": (loaded - started) * 1000, "app_ms": (built - loaded) * 1000}
    if timings_fd is not None:  # a sandboxed replica cannot open host paths: a descriptor
        os.write(timings_fd, json.dumps(timings).encode())
        os.close(timings_fd)
    elif request.get("timings"):
        _write_json(request["timings"], timings)
    serve(
        app,
        host=request.get("host") or "127.0.0.1",
        port=int(request.get("port") or 0),
        log_level=level,
        graceful_seconds=int(request.get("graceful_seconds") or 5),
        log_config=None,  # uvicorn's loggers go through the root handler set above
    )


def _child(request: dict[str, Any], protocol_fd: int) -> None:
    """Body of a forked child; always ends the process."""
    code = 0
    try:
        os.setsid()
        # Back to default handlers: the pool's SIGCHLD reaper must not run in a replica.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(protocol_fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
        if request.get("pidfile"):
            pid = os.getpid()
            _write_json(
                request["pidfile"],
                {"pid": pid, "port": request.get("port"), "start_time": proc_start_time(pid)},
            )
        timings_fd = _confine(request) if request.get("sandbox") else None
        run_replica(request, timings_fd)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _confine(request: dict[str, Any]) -> int | None:
    """Confine this child per the request's sandbox spec (see the module docstring); returns,
    inside the sandbox, the descriptor to write the timings to. A sandbox that cannot be had
    ends the child with EXIT_SANDBOX_FAILED: nothing of the tenant ever runs unconfined."""
    from kubeserve_runtime.sandbox.core import SandboxUnavailable, enter
    from kubeserve_runtime.sandbox.spec import EXIT_SANDBOX_FAILED, SandboxSpec

    timings_fd = None
    if request.get("timings"):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        timings_fd = os.open(request["timings"], flags, 0o640)
    try:
        spec = SandboxSpec.from_dict(request["sandbox"])
        enter(spec, keep_fds=[] if timings_fd is None else [timings_fd])
    except (SandboxUnavailable, ValueError) as exc:
        print(f"sandbox unavailable: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_SANDBOX_FAILED)
    return timings_fd


class Pool:
    def __init__(self, out: TextIO, protocol_fd: int) -> None:
        self.out = out
        self.protocol_fd = protocol_fd
        self.children: dict[int, int | None] = {}  # pid -> exit status once reaped

    def reap(self, *_: object) -> None:
        # Our children are replicas in their own sessions; reaping keeps them from lingering as
        # zombies after they exit (which would look alive to a `kill(pid, 0)` probe).
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children[pid] = os.waitstatus_to_exitcode(status)

    def reply(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            alive = [p for p, status in self.children.items() if status is None]
            return {"ok": True, "pid": os.getpid(), "children": alive}
        if op == "spawn":
            for key in ("model", "name", "log"):
                if key not in request:
                    return {"ok": False, "error": f"spawn needs {key!r}"}
            if not request.get("sandbox") and not request.get("port"):
                return {"ok": False, "error": "spawn needs 'port' (or a 'sandbox')"}
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                _child(request, self.protocol_fd)
            self.children[pid] = None
            return {"ok": True, "pid": pid, "fork_ms": (time.perf_counter() - started) * 1000}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def serve(self, requests: TextIO) -> None:
        for line in requests:
            line = line.strip()
            if not line:
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as exc:
                self.reply({"ok": False, "error": f"bad request: {exc}"})
                continue
            try:
                response = self.handle(request)
            except Exception as exc:
                response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.reply({"id": request.get("id"), **response})


def main() -> int:
    # Keep the protocol channel private: fd 1 becomes stderr for everything else.
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(protocol_fd, "w", buffering=1, encoding="utf-8", closefd=False)
    started = time.perf_counter()
    loaded = preload()
    # Move everything imported so far out of the collector's reach: children then share those
    # pages with the pool instead of copying them when a collection touches their headers.
    gc.collect()
    gc.freeze()
    pool = Pool(out, protocol_fd)
    signal.signal(signal.SIGCHLD, pool.reap)
    pool.reply(
        {
            "event": "ready",
            "pid": os.getpid(),
            "import_ms": (time.perf_counter() - started) * 1000,
            "preloaded": loaded,
        }
    )
    try:
        pool.serve(sys.stdin)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
