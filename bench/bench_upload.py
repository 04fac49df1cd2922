"""Streaming upload of a large model: memory held by the registry (and the gateway) and
throughput against a direct S3 upload of the same bytes.

In one run, on 127.0.0.1 only:
  1. baseline: the bytes uploaded straight to S3 with aioboto3 (the artifact store's multipart
     upload, same part size), from this process;
  2. registry: `POST /models/{id}/versions` straight to the registry (principal header);
  3. gateway: `POST /api/v1/models/{id}/versions` through the gateway (access token from the
     real auth service), which streams to the registry.
The S3 server is moto's (a subprocess); registry, gateway and auth are subprocesses in the
embedded configuration (SQLite, in-process bus) except that the registry stores into S3. The
body is generated on the fly (never held whole, here or anywhere). Peak RSS growth is sampled
from /proc/<pid>/status (VmRSS every 10 ms, and VmHWM after resetting it via clear_refs when
permitted). Asserts nothing about time.

    uv run python bench/bench_upload.py --size-mib 64        # quick
    uv run python bench/bench_upload.py                       # 1 GiB, as the issue asks
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

MIB = 1024 * 1024
CHUNK = 1 * MIB
BOUNDARY = "kubeserve-bench-boundary"
BUCKET = "kubeserve-bench"


# -- child processes ---------------------------------------------------------------------------
def _serve(service: str, port: int, settings: dict[str, Any]) -> None:
    """Child process: one service on 127.0.0.1:port."""
    import uvicorn

    if service == "registry":
        from kubeserve_registry.bootstrap import bootstrap
        from kubeserve_registry.main import create_app
        from kubeserve_registry.settings import RegistrySettings

        app = create_app(bootstrap(RegistrySettings(**settings)))
    elif service == "auth":
        from kubeserve_auth.bootstrap import bootstrap as auth_bootstrap
        from kubeserve_auth.main import create_app as auth_create_app
        from kubeserve_auth.testing import make_settings

        app = auth_create_app(auth_bootstrap(make_settings(**settings)))
    else:
        from kubeserve_gateway.bootstrap import bootstrap as gw_bootstrap
        from kubeserve_gateway.main import create_app as gw_create_app
        from kubeserve_gateway.settings import GatewaySettings

        app = gw_create_app(gw_bootstrap(GatewaySettings(**settings)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait(url: str, path: str = "/healthz", deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


# -- memory sampling ---------------------------------------------------------------------------
def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class RssSampler:
    """Peak VmRSS of some processes while a block runs (and VmHWM, reset at the start)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.01) -> None:
        self.pids = pids
        self.interval = interval
        self.before: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.hwm: dict[str, int | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        for name, pid in self.pids.items():
            self.before[name] = self.peak[name] = _status_kib(pid, "VmRSS")
            try:  # "5" resets the peak-RSS counter (Linux >= 4.0; needs ptrace rights on pid)
                Path(f"/proc/{pid}/clear_refs").write_text("5")
                self.hwm[name] = 0
            except OSError:
                self.hwm[name] = None
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError, KeyError):
                    self.peak[name] = max(self.peak[name], _status_kib(pid, "VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for name, pid in self.pids.items():
            if self.hwm[name] is not None:
                self.hwm[name] = _status_kib(pid, "VmHWM")

    def growth_mib(self, name: str) -> tuple[float, float | None]:
        sampled = (self.peak[name] - self.before[name]) / 1024
        hwm = self.hwm[name]
        return sampled, (hwm - self.before[name]) / 1024 if hwm is not None else None


# -- the body ----------------------------------------------------------------------------------
def _block() -> bytes:
    return os.urandom(CHUNK)


def model_chunks(size: int, block: bytes) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        yield block[:n]
        sent += n


def expected_sha256(size: int, block: bytes) -> str:
    digest = hashlib.sha256()
    for chunk in model_chunks(size, block):
        digest.update(chunk)
    return digest.hexdigest()


def multipart_body(size: int, block: bytes) -> tuple[int, AsyncIterator[bytes]]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"; '
        f'filename="big.onnx"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    async def gen() -> AsyncIterator[bytes]:
        yield head
        for chunk in model_chunks(size, block):
            yield chunk
        yield tail

    return len(head) + size + len(tail), gen()


async def http_upload(
    url: str, headers: dict[str, str], size: int, block: bytes, expected: str
) -> float:
    length, body = multipart_body(size, block)
    timeout = httpx.Timeout(connect=10, read=600, write=120, pool=10)
    async with httpx.AsyncClient(timeout=timeout) as client:
        started = time.perf_counter()
        resp = await client.post(
            url,
            content=body,
            headers={
                **headers,
                "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                "content-length": str(length),
            },
        )
        elapsed = time.perf_counter() - started
    if resp.status_code != 201:
        raise SystemExit(f"upload answered {resp.status_code}: {resp.text[:500]}")
    if resp.json()["artifact"]["sha256"] != expected:
        raise SystemExit("the registry stored different bytes than were sent")
    return elapsed


async def direct_upload(
    s3_url: str, size: int, block: bytes, expected: str, key: str, part_mib: int, concurrency: int
) -> float:
    from kubeserve_common.storage.s3 import S3ArtifactStore

    store = S3ArtifactStore(
        BUCKET,
        endpoint_url=s3_url,
        access_key_id="bench",
        secret_access_key="bench",  # noqa: S106 - moto accepts anything
        part_size=part_mib * MIB,
        upload_concurrency=concurrency,
    )
    try:
        await store.ensure_bucket()

        async def gen() -> AsyncIterator[bytes]:
            for chunk in model_chunks(size, block):
                yield chunk

        started = time.perf_counter()
        stored = await store.put_stream(key, gen())
        elapsed = time.perf_counter() - started
        if stored.sha256 != expected:
            raise SystemExit("direct upload hashed different bytes")
        await store.delete(key)  # moto keeps objects in memory
        return elapsed
    finally:
        await store.close()


async def empty_bucket(s3_url: str) -> None:
    from kubeserve_common.storage.s3 import S3ArtifactStore

    store = S3ArtifactStore(
        BUCKET,
        endpoint_url=s3_url,
        access_key_id="bench",
        secret_access_key="bench",  # noqa: S106 - moto accepts anything
    )
    try:
        await store.delete_prefix("models/")
    finally:
        await store.close()


# -- main --------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="artifact size (MiB)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per variant")
    parser.add_argument("--no-gateway", action="store_true", help="registry-direct only")
    parser.add_argument("--part-mib", type=int, default=8, help="S3 multipart part size")
    parser.add_argument("--concurrency", type=int, default=1, help="S3 parts in flight")
    args = parser.parse_args()
    size = args.size_mib * MIB

    from kubeserve_common.net import free_port
    from kubeserve_common.security.principal import Principal, encode_principal
    from kubeserve_common.settings import DEV_INTERNAL_SECRET

    home = Path(tempfile.mkdtemp(prefix="ks-bench-upload-"))
    ports = {name: free_port() for name in ("s3", "registry", "auth", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    moto = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports["s3"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    ctx = mp.get_context("spawn")
    common = {"dev_mode": True, "broker_url": "memory://", "log_level": "WARNING"}
    registry_settings = {
        **common,
        "home": str(home / "registry"),
        "database_url": f"sqlite+aiosqlite:///{home}/registry.db",
        "artifact_store_url": f"s3://{BUCKET}",
        "s3_endpoint_url": urls["s3"],
        "s3_access_key_id": "bench",
        "s3_secret_access_key": "bench",
        "s3_read_timeout": 300,
        "s3_part_size": args.part_mib * MIB,
        "s3_upload_concurrency": args.concurrency,
        "max_artifact_bytes": max(size, 2 * 1024 * MIB),
    }
    procs = {
        "registry": ctx.Process(
            target=_serve, args=("registry", ports["registry"], registry_settings), daemon=True
        )
    }
    with_gateway = not args.no_gateway
    if with_gateway:
        try:
            import kubeserve_auth.testing  # noqa: F401
            import kubeserve_gateway.main  # noqa: F401
        except ImportError as exc:
            print(f"gateway or auth not importable ({exc}); measuring registry-direct only")
            with_gateway = False
    if with_gateway:
        procs["auth"] = ctx.Process(
            target=_serve,
            args=(
                "auth",
                ports["auth"],
                {
                    **common,
                    "home": str(home / "auth"),
                    "database_url": f"sqlite+aiosqlite:///{home}/auth.db",
                },
            ),
            daemon=True,
        )
        procs["gateway"] = ctx.Process(
            target=_serve,
            args=(
                "gateway",
                ports["gateway"],
                {
                    **common,
                    "home": str(home / "gateway"),
                    "database_url": f"sqlite+aiosqlite:///{home}/gateway.db",
                    "auth_url": urls["auth"],
                    "registry_url": urls["registry"],
                    "deployer_url": urls["registry"],
                    "gateway_max_upload_bytes": size + MIB,
                    "upstream_read_timeout": 600,
                    "upstream_write_timeout": 120,
                },
            ),
            daemon=True,
        )
    for proc in procs.values():
        proc.start()
    timings: dict[str, list[float]] = {"baseline": [], "registry": []}
    memory: dict[str, list[tuple[float, float | None]]] = {}
    try:
        _wait(urls["s3"], "/")
        for name in procs:
            _wait(urls[name])
        block = _block()
        expected = expected_sha256(size, block)
        user_id = uuid.uuid4()
        with httpx.Client(timeout=30) as client:
            direct_headers = {
                "x-kubeserve-principal": encode_principal(
                    Principal(user_id=user_id), DEV_INTERNAL_SECRET, ttl_seconds=3600
                )
            }
            if with_gateway:
                email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
                password = "Bench-password-123"  # noqa: S105 - a throwaway local account
                r = client.post(
                    f"{urls['gateway']}/api/v1/auth/register",
                    json={"email": email, "password": password},
                )
                r.raise_for_status()
                user_id = uuid.UUID(r.json()["id"])
                r = client.post(
                    f"{urls['gateway']}/api/v1/auth/login",
                    json={"email": email, "password": password},
                )
                r.raise_for_status()
                gateway_headers = {"authorization": f"Bearer {r.json()['access_token']}"}
                direct_headers = {
                    "x-kubeserve-principal": encode_principal(
                        Principal(user_id=user_id), DEV_INTERNAL_SECRET, ttl_seconds=3600
                    )
                }
                timings["gateway"] = []
            r = client.post(
                f"{urls['registry']}/models",
                json={"name": "bench", "framework": "onnx"},
                headers=direct_headers,
            )
            r.raise_for_status()
            model_id = r.json()["id"]
        pids = {name: proc.pid for name, proc in procs.items() if name != "auth"}
        s3_opts = (args.part_mib, args.concurrency)
        # Warm-up: first-use costs (S3 client and service model, bucket, connection pools,
        # lazy imports) are paid once per process and are not what we measure.
        warm = 6 * MIB
        warm_sha = expected_sha256(warm, block)
        asyncio.run(direct_upload(urls["s3"], warm, block, warm_sha, "warm", *s3_opts))
        targets = [(f"{urls['registry']}/models/{model_id}/versions", direct_headers)]
        if with_gateway:
            targets.append(
                (f"{urls['gateway']}/api/v1/models/{model_id}/versions", gateway_headers)
            )
        for url, headers in targets:
            asyncio.run(http_upload(url, headers, warm, block, warm_sha))
        asyncio.run(empty_bucket(urls["s3"]))
        for round_no in range(args.rounds):
            key = f"baseline/{round_no}"
            timings["baseline"].append(
                asyncio.run(direct_upload(urls["s3"], size, block, expected, key, *s3_opts))
            )
            with RssSampler({"registry": pids["registry"]}) as sampler:
                timings["registry"].append(
                    asyncio.run(
                        http_upload(
                            f"{urls['registry']}/models/{model_id}/versions",
                            direct_headers,
                            size,
                            block,
                            expected,
                        )
                    )
                )
            memory.setdefault("registry (direct)", []).append(sampler.growth_mib("registry"))
            asyncio.run(empty_bucket(urls["s3"]))
            if with_gateway:
                with RssSampler(
                    {"registry": pids["registry"], "gateway": pids["gateway"]}
                ) as sampler:
                    timings["gateway"].append(
                        asyncio.run(
                            http_upload(
                                f"{urls['gateway']}/api/v1/models/{model_id}/versions",
                                gateway_headers,
                                size,
                                block,
                                expected,
                            )
                        )
                    )
                memory.setdefault("registry (via gateway)", []).append(
                    sampler.growth_mib("registry")
                )
                memory.setdefault("gateway", []).append(sampler.growth_mib("gateway"))
                asyncio.run(empty_bucket(urls["s3"]))
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.join(10)
        moto.terminate()
        moto.wait(10)

    print(
        f"upload of {args.size_mib} MiB, {args.rounds} round(s), parts of {args.part_mib} MiB x "
        f"{args.concurrency} in flight, 127.0.0.1, S3 = moto server"
    )
    base = statistics.median(timings["baseline"])
    print(f"{'variant':34} {'seconds':>8} {'MiB/s':>8} {'ratio to direct S3':>19}")
    labels = {
        "baseline": "direct aioboto3 -> S3 (baseline)",
        "registry": "registry -> S3",
        "gateway": "gateway -> registry -> S3",
    }
    for name, values in timings.items():
        t = statistics.median(values)
        print(f"{labels[name]:34} {t:8.2f} {args.size_mib / t:8.1f} {base / t:19.2f}")
    print(f"\n{'peak RSS growth during the upload':34} {'sampled MiB':>12} {'VmHWM MiB':>10}")
    for name, values in memory.items():
        sampled = max(v[0] for v in values)
        hwms = [v[1] for v in values if v[1] is not None]
        hwm = f"{max(hwms):10.1f}" if hwms else f"{'n/a':>10}"
        print(f"{name:34} {sampled:12.1f} {hwm}")
    if not with_gateway:
        print("\n(gateway not measured: registry-direct only)")


if __name__ == "__main__":
    main()
