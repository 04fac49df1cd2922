"""Prediction throughput and latency through the gateway versus straight at the runtime.

Starts the embedded platform (`kubeserve up` in its own process, the rate limiter on with limits
high enough never to throttle the bench, as issue 16 asks), deploys a tiny iris model with one
replica, then at concurrency 1 / 8 / 32 sends the same `POST /predict` either to
  - gateway: `/api/v1/predict/{id}` with an API key (authentication, rate-limit bookkeeping,
             route lookup, proxying), or
  - direct:  the replica's own `/predict` on its Unix socket (contained replicas have no network),
in interleaved rounds, and prints requests/s, p50 and p99 of each, their ratio and the p50 the
gateway adds. Goal (issue 6): the gateway adds <= 0.5 ms p50 at concurrency 1. Asserts nothing.

On Linux it also prints the platform process's CPU time per request (`cpu us/req`, from
/proc, the model replica excluded): for `direct` that is the idle background of the embedded
services, for `gateway` that plus the gateway's own cost. Much steadier than latencies on a
noisy machine, so the number to compare when changing the gateway.

    uv run python bench/bench_predict_gateway.py            # 8 rounds x 600 calls per cell
    uv run python bench/bench_predict_gateway.py --quick    # 6 rounds x 200

Many short interleaved rounds, medians per cell: a burst of other work on a shared machine
spoils a round or two of one target, not the cell's median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "libs" / "sdk" / "src"))

from kubeserve_sdk import Client  # noqa: E402

BODY = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(
    url: str, headers: dict[str, str], concurrency: int, total: int, uds: str | None = None
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = httpx.AsyncHTTPTransport(uds=uds, limits=limits) if uds else None
    async with httpx.AsyncClient(
        headers=headers, limits=limits, timeout=30, trust_env=False, transport=transport
    ) as client:
        for _ in range(min(20, total)):  # warm the connections
            (await client.post(url, json=BODY)).raise_for_status()
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post(url, json=BODY)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return total / elapsed, latencies


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` (not its children), None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replica_socket(home: Path, deployment_id: str) -> str:
    """The Unix socket the deployment's (contained) replica serves on, from its state file."""
    for path in (home / "runtime" / "replicas").glob("*.json"):
        if path.name.endswith(".timings.json"):
            continue
        data = json.loads(path.read_text())
        if data.get("deployment_id") == deployment_id and data.get("socket"):
            return str(data["socket"])
    raise RuntimeError("no replica state file with a socket found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, total = (6, 200) if args.quick else (8, 600)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}
        env.update(
            KUBESERVE_STOP_REPLICAS_ON_EXIT="true",
            # The limiter runs (its bookkeeping is part of the hop) but never throttles.
            KUBESERVE_RATE_LIMIT_PRINCIPAL_RPS="1000000",
            KUBESERVE_RATE_LIMIT_PRINCIPAL_BURST="1000000",
            KUBESERVE_RATE_LIMIT_DEPLOYMENT_RPS="1000000",
            KUBESERVE_RATE_LIMIT_DEPLOYMENT_BURST="1000000",
        )
        log = (Path(tmp) / "up.log").open("wb")
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "kubeserve_cli", "up", "--port", str(port), "--home", str(home)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the platform did not start; see its log")
                time.sleep(0.2)
            client = Client(base)
            client.register("bench@example.com", "a bench passphrase 9")
            client.login("bench@example.com", "a bench passphrase 9")
            import joblib
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression

            model_path = Path(tmp) / "iris.joblib"
            x, y = load_iris(return_X_y=True)
            joblib.dump(LogisticRegression(max_iter=500).fit(x, y), model_path)
            model = client.create_model("iris")
            version = client.wait_for_version(
                model["id"], client.push(model["id"], model_path)["id"]
            )
            deployment = client.wait_for_deployment(client.deploy(version["id"])["id"])
            assert deployment["status"] == "Running", deployment
            # Predictions are what API keys are for (issue 16.2 measures them so).
            api_key = client.create_api_key("bench").key
            targets = {
                "gateway": (
                    f"{base}/api/v1/predict/{deployment['id']}",
                    {"authorization": f"Bearer {api_key}"},
                    None,
                ),
                "direct": ("http://replica/predict", {}, replica_socket(home, deployment["id"])),
            }
            print(
                f"{'c':>3} {'target':<8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>10}"
            )
            for concurrency in (1, 8, 32):
                cells: dict[str, list[tuple[float, ...]]] = {name: [] for name in targets}
                order = list(targets.items())
                for round_ in range(rounds):  # alternate who goes first
                    for name, (url, headers, uds) in order if round_ % 2 == 0 else order[::-1]:
                        cpu_before = cpu_seconds(proc.pid)
                        rps, lat = asyncio.run(run(url, headers, concurrency, total, uds))
                        cpu_after = cpu_seconds(proc.pid)
                        cpu = (
                            (cpu_after - cpu_before) / (total + min(20, total)) * 1e6
                            if cpu_before is not None and cpu_after is not None
                            else float("nan")
                        )
                        cells[name].append((rps, pct(lat, 0.5), pct(lat, 0.99), cpu))
                summary = {
                    name: tuple(statistics.median(v[i] for v in values) for i in range(4))
                    for name, values in cells.items()
                }
                for name, (rps, p50, p99, cpu) in summary.items():
                    row = f"{concurrency:>3} {name:<8} {rps:>8.0f} {p50:>8.2f} {p99:>8.2f}"
                    print(f"{row} {cpu:>10.0f}")
                g, d = summary["gateway"], summary["direct"]
                print(
                    f"    gateway/direct throughput {g[0] / d[0]:.2f}x, "
                    f"p50 added {g[1] - d[1]:+.2f} ms, p99 added {g[2] - d[2]:+.2f} ms, "
                    f"gateway cpu ~{g[3] - d[3]:.0f} us/req"
                )
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
