"""Embedded start-up: `kubeserve up` until it is healthy (`/readyz` 200 through the gateway) and
until its warm pool is ready (the deployer logs "warm pool ready"), on a fresh home (first start:
databases created and migrated) and again on the same home (a restart). Beside it, in the same
run: a bare `python -c "import sklearn"` (what any Python ML process pays before doing anything).

    uv run python bench/bench_startup.py            # 3 runs of each
    uv run python bench/bench_startup.py --runs 5
    uv run python bench/bench_startup.py --compare ../main/.venv/bin/python   # another checkout

Prints the median of each and its ratio to the bare import. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kubeserve_common.net import free_port

READY_LINE = b"warm pool ready"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}
    return {**env, "KUBESERVE_STOP_REPLICAS_ON_EXIT": "true"}


def bare_import() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sklearn"], check=True)
    return time.perf_counter() - started


def start_up(home: Path, python: str, timeout: float = 120.0) -> tuple[float, float]:
    """Seconds from spawning `kubeserve up` to healthy, and to its warm pool being ready."""
    port = free_port()
    log = home / "up.log"
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # INFO: the deployer logs "warm pool ready" at that level.
    argv = ["-m", "kubeserve_cli", "up", "--port", str(port), "--home", str(home)]
    proc = subprocess.Popen(  # noqa: S603 - a Python of ours, fixed arguments
        [python, *argv, "--log-level", "INFO"],
        env=clean_env(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    healthy = pool = None
    try:
        deadline = started + timeout
        with httpx.Client(timeout=1) as client:
            while (healthy is None or pool is None) and time.perf_counter() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"kubeserve up exited ({proc.returncode}); see {log}")
                if healthy is None:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                            healthy = time.perf_counter() - started
                if pool is None and READY_LINE in log.read_bytes():
                    pool = time.perf_counter() - started
                time.sleep(0.01)
        if healthy is None or pool is None:
            raise TimeoutError(f"not healthy and warm within {timeout}s; see {log}")
        return healthy, pool
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--compare", metavar="PYTHON", help="also start the checkout this interpreter runs"
    )
    args = parser.parse_args()
    pythons = {"this checkout": sys.executable}
    if args.compare:
        pythons["compared"] = args.compare
    bare: list[float] = []
    first: dict[str, list[tuple[float, float]]] = {name: [] for name in pythons}
    again: dict[str, list[tuple[float, float]]] = {name: [] for name in pythons}
    with tempfile.TemporaryDirectory(prefix="ks-bench-startup-") as tmp:
        for n in range(args.runs):
            bare.append(bare_import())
            print(f"run {n + 1}: import sklearn {bare[-1]:.2f} s", flush=True)
            for name, python in pythons.items():
                home = Path(tmp) / f"{name.replace(' ', '-')}-{n}"
                first[name].append(start_up(home, python))
                again[name].append(start_up(home, python))
                print(
                    f"  {name}: fresh home healthy {first[name][-1][0]:.2f} s, pool "
                    f"{first[name][-1][1]:.2f} s; restart healthy {again[name][-1][0]:.2f} s, "
                    f"pool {again[name][-1][1]:.2f} s",
                    flush=True,
                )
    base = statistics.median(bare)
    print(f"\nmedians over {args.runs} runs (ratio to a bare `python -c 'import sklearn'`)")
    print(f"{'':46} {'seconds':>8} {'ratio':>7}")
    print(f"{'import sklearn (baseline)':46} {base:8.2f} {1.0:7.2f}")
    for name in pythons:
        for label, values in (("fresh home", first[name]), ("restart", again[name])):
            for what, index in (("healthy", 0), ("warm pool ready", 1)):
                value = statistics.median(v[index] for v in values)
                print(f"{f'{name}, {label}: {what}':46} {value:8.2f} {value / base:7.2f}")


if __name__ == "__main__":
    main()
