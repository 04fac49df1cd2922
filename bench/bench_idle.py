"""CPU of an idle KubeServe: every process of the distributed platform (five services on
PostgreSQL, RabbitMQ and an S3 server) and of the embedded one (`kubeserve up`, its warm pool
included), measured over the same window beside a baseline `python -c "import time;
time.sleep(W)"` started with them.

    uv run python bench/bench_idle.py                 # settle 15 s, measure 60 s
    uv run python bench/bench_idle.py --window 30     # shorter

Each process's user+system CPU is read from /proc/<pid>/stat at the start and the end of the
window (children included: the embedded warm pool, the build sandbox probe). Prints % of one
core per process and the excess over the baseline. Target: <= 0.5 % per idle process. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kubeserve_common.net import free_port

from tests.e2e.platform import distributed, embedded

ADMIN_DSN = os.environ.get(
    "KUBESERVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("KUBESERVE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live descendants (a descendant that exits during the
    window takes its time with it; an idle platform should not be starting any)."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return float("nan")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    name = f"ks_bench_idle_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    netloc = ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{netloc}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server in a process of its own (its CPU is not ours, and not measured)."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own venv's moto_server
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}", timeout=1)
                break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ks-bench-idle-")))
        database_url = stack.enter_context(scratch_database())
        s3_url = stack.enter_context(s3_server())
        (tmp / "distributed").mkdir()
        print("starting the distributed platform ...", flush=True)
        dist = stack.enter_context(
            distributed(
                tmp / "distributed",
                database_url=database_url,
                amqp_url=AMQP_URL,
                bus_prefix=f"bench-idle-{uuid.uuid4().hex[:8]}",
                s3_url=s3_url,
                bucket=f"bench-idle-{uuid.uuid4().hex[:8]}",
            )
        )
        print("starting the embedded platform ...", flush=True)
        emb = stack.enter_context(embedded(tmp / "embedded"))
        sleeper = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", f"import time; time.sleep({args.settle + args.window + 30})"]
        )
        stack.callback(sleeper.wait)
        stack.callback(sleeper.terminate)

        watched = {
            **{f"distributed {name}": p.pid for name, p in dist.processes.items()},
            "embedded (kubeserve up + pool)": emb.processes["up"].pid,
            "baseline sleep": sleeper.pid,
        }
        print(f"settling {args.settle:g} s, then measuring {args.window:g} s ...", flush=True)
        time.sleep(args.settle)
        before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        started = time.monotonic()
        time.sleep(args.window)
        elapsed = time.monotonic() - started
        after = {name: cpu_seconds(pid) for name, pid in watched.items()}

    share = {name: 100 * (after[name] - before[name]) / elapsed for name in watched}
    base = share["baseline sleep"]
    print(f"\nidle CPU over {elapsed:.0f} s, % of one core (target <= 0.5 % per process)")
    print(f"{'process':34} {'% core':>8} {'- baseline':>11}")
    for name, value in share.items():
        print(f"{name:34} {value:8.2f} {value - base:11.2f}")
    services = [v for k, v in share.items() if k.startswith("distributed")]
    print(
        f"\ndistributed: {sum(services):.2f} % of a core in all, worst {max(services):.2f} %; "
        f"embedded {share['embedded (kubeserve up + pool)']:.2f} %; baseline {base:.2f} %"
    )


if __name__ == "__main__":
    main()
