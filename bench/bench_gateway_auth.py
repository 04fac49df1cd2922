"""The per-request cost of the gateway's authentication.

Compares, in one run, `GET /api/v1/auth/me` through the gateway (access token verified locally
against the JWKS, rate limits, principal header minted, request proxied) with `GET /auth/me`
straight to the auth service carrying a ready-made principal header - the same internal
endpoint. Also shows an API key (served from the gateway's cache) for reference.

Needs nothing external: auth and the gateway run in the embedded configuration (SQLite files
in a temporary directory, the in-memory bus), each in its own process on 127.0.0.1.

    uv run python bench/bench_gateway_auth.py [--requests 2000] [--rounds 5]

Prints p50/p99 per variant and the ratios gateway/direct. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def _serve(service: str, port: int, settings: dict[str, Any]) -> None:
    """Child process: one service on 127.0.0.1:port."""
    import uvicorn

    if service == "auth":
        from kubeserve_auth.bootstrap import bootstrap
        from kubeserve_auth.main import create_app
        from kubeserve_auth.testing import make_settings

        app = create_app(bootstrap(make_settings(**settings)))
    else:
        from kubeserve_gateway.bootstrap import bootstrap as gw_bootstrap
        from kubeserve_gateway.main import create_app as gw_create_app
        from kubeserve_gateway.settings import GatewaySettings

        app = gw_create_app(gw_bootstrap(GatewaySettings(**settings)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait(url: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def _measure(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        r = client.get(url, headers=headers)
        samples.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise SystemExit(f"{url} answered {r.status_code}: {r.text}")
    return samples


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()

    from kubeserve_common.net import free_port
    from kubeserve_common.security.principal import Principal, encode_principal
    from kubeserve_common.settings import DEV_INTERNAL_SECRET

    home = Path(tempfile.mkdtemp(prefix="ks-bench-"))
    auth_port, gw_port = free_port(), free_port()
    auth_url, gw_url = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{gw_port}"
    ctx = mp.get_context("spawn")
    common = {"dev_mode": True, "broker_url": "memory://", "log_level": "WARNING"}
    procs = [
        ctx.Process(
            target=_serve,
            args=(
                "auth",
                auth_port,
                {
                    **common,
                    "home": home / "auth",
                    "database_url": f"sqlite+aiosqlite:///{home}/auth.db",
                },
            ),
            daemon=True,
        ),
        ctx.Process(
            target=_serve,
            args=(
                "gateway",
                gw_port,
                {
                    **common,
                    "home": home / "gw",
                    "database_url": f"sqlite+aiosqlite:///{home}/gw.db",
                    "auth_url": auth_url,
                    # Limits on but out of the way: their cost is part of what we measure.
                    "rate_limit_ip_rps": 1e9,
                    "rate_limit_ip_burst": 10**9,
                    "rate_limit_principal_rps": 1e9,
                    "rate_limit_principal_burst": 10**9,
                    "api_key_cache_ttl": 3600,
                },
            ),
            daemon=True,
        ),
    ]
    # A second gateway that verifies the JWT signature on every request (no verified-token
    # cache), to show what the cache saves.
    gw2_port = free_port()
    gw2_url = f"http://127.0.0.1:{gw2_port}"
    gw_settings = dict(procs[1]._args[2])  # type: ignore[attr-defined]
    procs.append(
        ctx.Process(
            target=_serve,
            args=(
                "gateway",
                gw2_port,
                {
                    **gw_settings,
                    "home": home / "gw2",
                    "database_url": f"sqlite+aiosqlite:///{home}/gw2.db",
                    "token_cache_ttl": 0,
                },
            ),
            daemon=True,
        )
    )
    for proc in procs:
        proc.start()
    try:
        _wait(auth_url)
        _wait(gw_url)
        _wait(gw2_url)
        with httpx.Client(timeout=30) as client:
            email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench-password-123"
            r = client.post(
                f"{gw_url}/api/v1/auth/register", json={"email": email, "password": password}
            )
            r.raise_for_status()
            user_id = r.json()["id"]
            r = client.post(
                f"{gw_url}/api/v1/auth/login", json={"email": email, "password": password}
            )
            r.raise_for_status()
            token = r.json()["access_token"]
            r = client.post(
                f"{gw_url}/api/v1/auth/api-keys",
                json={"name": "bench"},
                headers={"authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            api_key = r.json()["key"]
            principal = encode_principal(
                Principal(user_id=uuid.UUID(user_id)), DEV_INTERNAL_SECRET, ttl_seconds=3600
            )
            variants = {
                "direct (auth, principal header)": (
                    f"{auth_url}/auth/me",
                    {"x-kubeserve-principal": principal},
                ),
                "gateway (JWT)": (f"{gw_url}/api/v1/auth/me", {"authorization": f"Bearer {token}"}),
                "gateway (JWT, no token cache)": (
                    f"{gw2_url}/api/v1/auth/me",
                    {"authorization": f"Bearer {token}"},
                ),
                "gateway (API key, cached)": (f"{gw_url}/api/v1/auth/me", {"x-api-key": api_key}),
                # The proxy hop alone, without authentication: a public route.
                "direct JWKS (no auth)": (f"{auth_url}/.well-known/jwks.json", {}),
                "gateway JWKS (no auth)": (f"{gw_url}/api/v1/.well-known/jwks.json", {}),
            }
            for url, headers in variants.values():  # warm up connections and caches
                _measure(client, url, headers, 200)
            samples: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.rounds):  # interleaved, so drift hits every variant alike
                for name, (url, headers) in variants.items():
                    samples[name] += _measure(client, url, headers, args.requests)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(10)

    base = samples["direct (auth, principal header)"]
    print(
        f"GET /auth/me, {args.rounds} x {args.requests} requests per variant, keep-alive, 127.0.0.1"
    )
    header = ("variant", "p50 ms", "p99 ms", "mean ms", "p50 ratio", "p99 ratio")
    print("{:34} {:>8} {:>8} {:>8} {:>10} {:>10}".format(*header))
    for name, values in samples.items():
        baseline = samples["direct JWKS (no auth)"] if "JWKS" in name else base
        print(
            f"{name:34} {_p(values, 0.5):8.3f} {_p(values, 0.99):8.3f} "
            f"{statistics.fmean(values) * 1000:8.3f} {_p(values, 0.5) / _p(baseline, 0.5):10.2f} "
            f"{_p(values, 0.99) / _p(baseline, 0.99):10.2f}"
        )
    added = _p(samples["gateway (JWT)"], 0.5) - _p(base, 0.5)
    hop = _p(samples["gateway JWKS (no auth)"], 0.5) - _p(samples["direct JWKS (no auth)"], 0.5)
    print("ratios: gateway variants against the direct call to the same endpoint")
    print(f"gateway overhead with JWT auth, p50: {added:.3f} ms per request")
    print(f"  of which the proxy hop alone (public route), p50: {hop:.3f} ms")
    print(f"  so authentication itself, p50: ~{added - hop:.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
