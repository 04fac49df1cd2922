"""Benchmark the model runtime against a bare FastAPI+uvicorn app serving the same model.

For a StandardScaler+LogisticRegression pipeline and a 200-tree RandomForest, at concurrency
1/8/32, it measures throughput and p50/p99 latency of one-row `POST /predict` requests for:
  - bare:      a hand-written FastAPI app (pydantic body, `def` endpoint, predict +
               predict_proba), the baseline, started in the same run;
  - runtime:   `python -m kubeserve_runtime` with adaptive batching off (--max-batch-size 1);
  - batched:   the runtime with adaptive batching on (--max-batch-size 32).
Every server is a subprocess on 127.0.0.1; the load generator is a small keep-alive HTTP/1.1
client on asyncio (cheaper than httpx, so the client steals less CPU from the server).

    uv run python bench/bench_runtime.py --quick      # ~1 minute
    uv run python bench/bench_runtime.py              # longer runs, steadier numbers

Goals: runtime/bare >= 1.0x everywhere; batched RandomForest at concurrency 32 >= 5x bare,
with a p99 no worse than bare's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BARE_APP = """
import sys
import joblib, numpy as np, uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(sys.argv[1])
app = FastAPI()

class PredictRequest(BaseModel):
    instances: list[list[float]]

@app.get("/v2/health/ready")
def ready():
    return {"ready": True}

@app.post("/predict")
def predict(req: PredictRequest):
    x = np.asarray(req.instances)
    return {"predictions": model.predict(x).tolist(),
            "probabilities": model.predict_proba(x).tolist()}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_models(directory: Path) -> dict[str, tuple[Path, list[list[float]]]]:
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = make_classification(
        n_samples=2000, n_features=20, n_informative=10, n_classes=3, random_state=0
    )
    models = {
        "scaler+logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "forest-200": RandomForestClassifier(n_estimators=200, random_state=0),
    }
    out = {}
    for name, model in models.items():
        model.fit(x, y)
        path = directory / f"{name}.joblib"
        joblib.dump(model, path)
        out[name] = (path, x[:256].tolist())
    return out


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(kind: str, model_path: Path, workdir: Path, batch_wait_ms: float) -> Server:
    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    if kind == "bare":
        script = workdir / "bare_app.py"
        script.write_text(BARE_APP)
        cmd = [sys.executable, str(script), str(model_path), str(port)]
    else:
        batch = "32" if kind == "batched" else "1"
        cmd = [
            sys.executable, "-m", "kubeserve_runtime", "--model", str(model_path),
            "--name", "m", "--port", str(port), "--max-batch-size", batch,
            "--log-level", "warning", "--max-batch-wait-ms", str(batch_wait_ms),
        ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)  # noqa: S603 - our argv
    deadline = time.monotonic() + 180  # a loaded shared machine imports slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1):
                return Server(kind, port, proc)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not become ready")


async def _connection(
    port: int, bodies: list[bytes], stop_at: float, record_from: float, latencies: list[float]
) -> int:
    """One keep-alive connection sending requests back to back until stop_at."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    i = 0
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            body = bodies[i % len(bodies)]
            i += 1
            writer.write(
                b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            started = time.perf_counter()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            elif started >= record_from:
                latencies.append((done - started) * 1000.0)
    finally:
        writer.close()
    return errors


@dataclass
class Result:
    rps: float
    p50: float
    p99: float
    errors: int
    cpu_ms: float = float("nan")  # server CPU time per answered request


def _cpu_seconds(pid: int) -> float:
    # utime + stime of the server process: CPU per request is far less sensitive to other
    # load on the machine than throughput is.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(
    port: int, rows: list[list[float]], concurrency: int, warmup: float, duration: float
) -> Result:
    bodies = [json.dumps({"instances": [row]}).encode() for row in rows]
    latencies: list[float] = []
    start = time.perf_counter()
    record_from = start + warmup
    stop_at = record_from + duration
    errors = await asyncio.gather(
        *(_connection(port, bodies, stop_at, record_from, latencies) for _ in range(concurrency))
    )
    latencies.sort()
    n = len(latencies)
    return Result(
        rps=n / duration,
        p50=statistics.median(latencies) if n else float("nan"),
        p99=latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
        errors=sum(errors),
    )


def _median(results: list[Result]) -> Result:
    return Result(
        rps=statistics.median(r.rps for r in results),
        p50=statistics.median(r.p50 for r in results),
        p99=statistics.median(r.p99 for r in results),
        errors=sum(r.errors for r in results),
        cpu_ms=statistics.median(r.cpu_ms for r in results),
    )


def measure_server(
    server: Server, rows: list[list[float]], concurrency: int, warmup: float, duration: float
) -> Result:
    cpu_before = _cpu_seconds(server.proc.pid)
    result = measure(server.port, rows, concurrency, warmup, duration)
    answered = result.rps * (duration + warmup)  # warm-up requests cost CPU too
    cpu = _cpu_seconds(server.proc.pid) - cpu_before
    result.cpu_ms = cpu * 1000.0 / answered if answered else float("nan")
    return result


def measure(
    port: int, rows: list[list[float]], concurrency: int, warmup: float, duration: float
) -> Result:
    try:
        import uvloop

        return uvloop.run(_load(port, rows, concurrency, warmup, duration))
    except ImportError:
        return asyncio.run(_load(port, rows, concurrency, warmup, duration))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (~1 minute in all)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds per point (median kept)"
    )
    parser.add_argument("--models", default="scaler+logreg,forest-200")
    parser.add_argument(
        "--batch-wait-ms", type=float, default=0.0, help="batched runtime's --max-batch-wait-ms"
    )
    args = parser.parse_args()
    duration = args.duration or (2.0 if args.quick else 4.0)
    rounds = args.rounds or (1 if args.quick else 3)
    warmup = 0.5 if args.quick else 1.5
    levels = [int(c) for c in args.concurrency.split(",")]
    kinds = ["bare", "runtime", "batched"]

    rows_out = []
    with tempfile.TemporaryDirectory(prefix="kubeserve-bench-") as tmp:
        workdir = Path(tmp)
        models = train_models(workdir)
        for model_name, (path, rows) in models.items():
            if model_name not in args.models.split(","):
                continue
            servers = {
                kind: start_server(kind, path, workdir, args.batch_wait_ms) for kind in kinds
            }
            try:
                for concurrency in levels:
                    runs: dict[str, list[Result]] = {kind: [] for kind in kinds}
                    # Interleave the servers, rotating who goes first, so drift in the
                    # machine's load hits them alike; keep the median of the rounds.
                    for r in range(rounds):
                        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                        for kind in order:
                            runs[kind].append(
                                measure_server(servers[kind], rows, concurrency, warmup, duration)
                            )
                    results = {kind: _median(res) for kind, res in runs.items()}
                    rows_out.append((model_name, concurrency, results))
                    _print_row(model_name, concurrency, results)
            finally:
                for server in servers.values():
                    server.stop()
    _print_summary(rows_out)
    return 0


def _print_header() -> None:
    print(
        f"{'model':<14}{'conc':>5} | {'bare rps':>9} {'p50':>6} {'p99':>7} {'cpu':>5} | "
        f"{'runtime rps':>11} {'x':>6} {'p50':>6} {'p99':>7} {'cpu':>5} | "
        f"{'batched rps':>11} {'x':>6} {'p50':>6} {'p99':>7} {'cpu':>5}"
    )


_header_done = False


def _print_row(model: str, concurrency: int, r: dict[str, Result]) -> None:
    global _header_done
    if not _header_done:
        print(
            "latencies in ms; x = throughput ratio against bare in this run; "
            "cpu = server CPU ms per request"
        )
        _print_header()
        _header_done = True
    bare = r["bare"]
    cells = [
        f"{model:<14}{concurrency:>5} | {bare.rps:>9.0f} {bare.p50:>6.2f} {bare.p99:>7.2f} "
        f"{bare.cpu_ms:>5.2f}"
    ]
    for kind in ("runtime", "batched"):
        res = r[kind]
        ratio = res.rps / bare.rps if bare.rps else float("nan")
        cells.append(
            f"{res.rps:>11.0f} {ratio:>5.2f}x {res.p50:>6.2f} {res.p99:>7.2f} {res.cpu_ms:>5.2f}"
        )
    errors = sum(res.errors for res in r.values())
    print(" | ".join(cells) + (f"  ({errors} non-200)" if errors else ""), flush=True)


def _print_summary(rows: list[tuple[str, int, dict[str, Result]]]) -> None:
    print("\ngoals (throughput ratio; CPU-per-request ratio bare/runtime in brackets):")
    for model, concurrency, r in rows:
        bare = r["bare"]
        for kind in ("runtime", "batched"):
            res = r[kind]
            ratio = res.rps / bare.rps
            cpu_ratio = bare.cpu_ms / res.cpu_ms if res.cpu_ms else float("nan")
            ok = "ok  " if ratio >= 1.0 else "MISS"
            print(
                f"  [{ok}] {kind} >= 1.0x bare   {model} c={concurrency}: {ratio:.2f}x "
                f"[cpu {cpu_ratio:.2f}x]"
            )
        if model == "forest-200" and concurrency == 32:
            b = r["batched"]
            ratio = b.rps / bare.rps
            ok = "ok  " if ratio >= 5.0 and b.p99 <= bare.p99 else "MISS"
            print(
                f"  [{ok}] batched >= 5x bare, p99 no worse   {model} c=32: {ratio:.2f}x, "
                f"p99 {b.p99:.1f} ms vs {bare.p99:.1f} ms"
            )


if __name__ == "__main__":
    raise SystemExit(main())
