"""How close the calibrated cold-start prediction comes to what users then see (issue 18.3).

On the embedded platform (`kubeserve up`, the local backend with its warm pool, sandboxed
replicas), a handful of different versions - a small and a large model, and a model whose
class comes from its own wheelhouse (which starts as a plain process: the pool has other
packages imported) - are deployed and deleted again, cycle after cycle. Before each deploy the
version's prediction is read (`GET /api/v1/cold-start`); after it, the replica's measured cold
start (`replica_details[].cold_start.total_ms`). Printed per version: the measured median, the
builder's fixed guess, the first (uncalibrated) prediction and the calibrated ones, each with
its absolute percentage error, and the median absolute percentage error (MdAPE) of each kind.
The builder's guess and the uncalibrated prediction are the baselines of the same run.
Target (issue 18): calibrated predictions within +-30 % of the measured median of the same
mode. Asserts nothing about time.

    uv run python bench/bench_cold_start_accuracy.py             # 6 cycles
    uv run python bench/bench_cold_start_accuracy.py --cycles 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    name: str
    version_id: str
    builder_ms: float
    predicted: list[tuple[float, bool, str]] = field(default_factory=list)  # ms, calibrated, on
    measured: list[tuple[float, str]] = field(default_factory=list)  # ms, backend


def models(directory: Path) -> list[tuple[str, Path, Path | None]]:
    """(name, model file, requirements file or None) of each version to deploy."""
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from services.builder.tests.builder_helpers import (
        PKG_NAME,
        PKG_VERSION,
        make_test_wheel,
        with_package,
    )

    x, y = load_iris(return_X_y=True)
    small = directory / "iris-small.joblib"
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), small)
    rng = np.random.default_rng(0)
    big_x = rng.normal(size=(4000, 20))
    big_y = (big_x[:, 0] + big_x[:, 1] > 0).astype(int)
    large = directory / "forest-large.joblib"
    forest = RandomForestClassifier(n_estimators=300, random_state=0).fit(big_x, big_y)
    joblib.dump(forest, large)
    _, unpacked = make_test_wheel(directory / "index")
    wheel_model = directory / "doubler-wheel.joblib"
    wheel_model.write_bytes(with_package(unpacked, "Doubler"))
    requirements = directory / "requirements.txt"
    requirements.write_text(f"{PKG_NAME}=={PKG_VERSION}\n")
    return [
        ("iris-small", small, None),
        ("forest-large", large, None),
        ("doubler-wheelhouse", wheel_model, requirements),
    ]


def ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured * 100 if measured > 0 else float("nan")


def run(cycles: int) -> None:
    from kubeserve_sdk import Client

    from tests.e2e.platform import embedded

    with tempfile.TemporaryDirectory(prefix="ks-accuracy-") as tmp_dir:
        tmp = Path(tmp_dir)
        versions = models(tmp)
        env = {"KUBESERVE_WHEEL_FIND_LINKS": str(tmp / "index" / "files")}
        with embedded(tmp / "home", env=env) as platform:
            client = Client(platform.url)
            client.register("accuracy@example.com", "an accuracy passphrase 1")
            client.login("accuracy@example.com", "an accuracy passphrase 1")
            rows = []
            for name, path, requirements in versions:
                model = client.create_model(name)
                pushed = client.push(str(model.id), path, requirements)
                built = client.wait_for_version(str(model.id), str(pushed.id), timeout=300)
                if built.status != "Ready":
                    raise SystemExit(f"{name} did not build: {built.failure_reason}")
                rows.append(Row(name, str(built.id), float(built.predicted_cold_start_ms or 0)))
            for cycle in range(cycles):
                for row in rows:
                    deploy_once(client, row)
                print(f"cycle {cycle + 1}/{cycles} done", file=sys.stderr, flush=True)
            client.close()
    report(rows, cycles)


def deploy_once(client: Any, row: Row) -> None:
    before = client.request("GET", "/cold-start", params={"version_id": row.version_id})
    deployment = client.deploy(row.version_id)
    dep = str(deployment.id)
    done = client.wait_for_deployment(dep, timeout=300)
    if done.status != "Running":
        raise SystemExit(f"{row.name} did not run: {done.failure_reason}")
    deadline = time.monotonic() + 30
    cold = None
    while cold is None and time.monotonic() < deadline:
        body = client.request("GET", f"/deployments/{dep}")
        cold = next((r["cold_start"] for r in body["replica_details"] if r["cold_start"]), None)
        if cold is None:
            time.sleep(0.1)
    if cold is None:
        raise SystemExit(f"{row.name}: no measured cold start")
    mine = next(p for p in before["predictions"] if p["backend"] == cold["backend"])
    row.predicted.append((mine["total_ms"], mine["calibrated"], cold["backend"]))
    row.measured.append((cold["total_ms"], cold["backend"]))
    client.delete_deployment(dep)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.get_deployment(dep).status == "Stopped":
                break
        except Exception:  # 404: gone
            break
        time.sleep(0.1)


def report(rows: list[Row], cycles: int) -> None:
    print(f"\ncold-start prediction accuracy, {cycles} deploy/delete cycles per version")
    header = (
        f"{'version':<20} {'backend':<16} {'measured p50':>12} {'builder':>9} {'err':>6} "
        f"{'uncalib.':>9} {'err':>6} {'calib. p50':>10} {'err':>6} {'n cal':>5}"
    )
    print(header)
    print("-" * len(header))
    builder_err, first_err, calibrated_err = [], [], []
    for row in rows:
        measured = statistics.median(ms for ms, _ in row.measured)
        backend = row.measured[-1][1]
        first = row.predicted[0][0]
        calibrated = [ms for ms, cal, _ in row.predicted if cal]
        calibrated_errs = [ape(ms, measured) for ms in calibrated]
        builder_err.append(ape(row.builder_ms, measured))
        first_err.append(ape(first, measured))
        calibrated_err += calibrated_errs
        cal_p50 = statistics.median(calibrated) if calibrated else float("nan")
        cal_e = statistics.median(calibrated_errs) if calibrated_errs else float("nan")
        print(
            f"{row.name:<20} {backend:<16} {measured:>10.0f}ms {row.builder_ms:>7.0f}ms "
            f"{builder_err[-1]:>5.0f}% {first:>7.0f}ms {first_err[-1]:>5.0f}% "
            f"{cal_p50:>8.0f}ms {cal_e:>5.0f}% {len(calibrated):>5}"
        )
        print(
            f"{'':<20} measured: "
            + ", ".join(f"{ms:.0f}" for ms, _ in row.measured)
            + " | predicted: "
            + ", ".join(f"{ms:.0f}{'*' if cal else ''}" for ms, cal, _ in row.predicted)
        )
    print("(* calibrated)")

    def mdape(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} %" if values else "n/a"

    print(f"\nMdAPE builder's fixed guess:          {mdape(builder_err)}")
    print(f"MdAPE first prediction (uncalibrated): {mdape(first_err)}")
    print(f"MdAPE calibrated predictions:          {mdape(calibrated_err)}")
    if calibrated_err and builder_err:
        ratio = statistics.median(calibrated_err) / max(statistics.median(builder_err), 1e-9)
        print(f"calibrated / builder error ratio:      {ratio:.3f}")
    within = sum(1 for e in calibrated_err if e <= 30)
    print(f"calibrated within +-30 %:              {within}/{len(calibrated_err)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=6)
    args = parser.parse_args()
    run(max(2, args.cycles))


if __name__ == "__main__":
    main()
