"""End to end through the builder: artifacts in S3 (moto), VersionUploaded on RabbitMQ, builds on
PostgreSQL, results observed on the bus; trial loads in kubeserve_runtime.sandbox."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from builder_helpers import (
    PKG_NAME,
    Allocates,
    RunsCommand,
    hostile_pickle,
    joblib_bytes,
    sklearn_pipeline,
    small_model,
    with_package,
)
from kubeserve_builder.main import create_app
from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, encode_principal

BUILT = VersionBuilt.event_type()
FAILED = VersionBuildFailed.event_type()


async def test_sklearn_pipeline_is_built_with_its_signature_and_report(start_builder: Any) -> None:
    builder = await start_builder()
    data, names = sklearn_pipeline()
    payload, _ = await builder.upload(data, requirements="scikit-learn>=1.0\nnumpy\n")

    event = await builder.result(payload.version_id)

    assert event.type == BUILT, event.data
    sig = event.data["signature"]
    assert sig["n_features_in"] == 4
    assert sig["feature_names_in"] == names
    assert sig["classes"] == [0, 1, 2]
    assert sig["has_predict_proba"] is True
    assert sig["outputs"] == ["predict", "predict_proba"]
    assert sig["smoke"]["ok"] is True
    assert sig["smoke"]["predict_proba"]["shape"] == [1, 3]
    plan = event.data["dependency_plan"]
    assert plan["to_install"] == []
    assert {i["name"] for i in plan["satisfied"]} == {"scikit-learn", "numpy"}
    assert event.data["wheelhouse_uri"] is None
    assert event.data["predicted_cold_start_ms"] > 0
    assert event.subject == f"models/{payload.model_id}/versions/v1"
    assert event.tenantid == str(payload.owner_id)

    # The report sits next to the artifact and times every step.
    assert event.data["report_uri"].endswith(
        f"models/{payload.owner_id}/{payload.model_id}/v1/build-report.json"
    )
    report = await builder.report(event)
    assert report["outcome"] == "succeeded"
    assert [s["stage"] for s in report["steps"]] == [
        "fetch", "static", "requirements", "wheelhouse", "trial",
    ]  # fmt: skip
    assert all(s["status"] == "ok" and s["duration_ms"] >= 0 for s in report["steps"])
    static = report["steps"][1]["details"]
    assert static["format"] == "pickle"
    assert static["globals"]["dangerous"] == []
    assert "sklearn.pipeline.Pipeline" in [g["global"] for g in static["globals"]["safe"]]
    assert report["sandbox"]["mode"] == "sandbox"
    assert report["sandbox"]["isolates_network"] and report["sandbox"]["isolates_filesystem"]

    # The read API: the owner sees the build, another tenant gets a 404.
    app = create_app(builder.container, manage_container=False)
    secret = builder.settings.internal_secret.get_secret_value()

    def auth(user: uuid.UUID) -> dict[str, str]:
        return {PRINCIPAL_HEADER: encode_principal(Principal(user_id=user), secret, 600)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://builder") as client:
        mine = await client.get(f"/builds/{payload.version_id}", headers=auth(payload.owner_id))
        theirs = await client.get(f"/builds/{payload.version_id}", headers=auth(uuid.uuid4()))
        anonymous = await client.get(f"/builds/{payload.version_id}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["status"] == "succeeded"
    assert mine.json()["report"]["outcome"] == "succeeded"
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "not_found"
    assert anonymous.status_code == 401


async def test_missing_requirement_gets_a_plan_and_a_wheelhouse(
    start_builder: Any, wheel_index: Any
) -> None:
    builder = await start_builder()
    _, wheel, unpacked = wheel_index
    # The model's class lives in a package only the local index has: the trial can load it
    # only through the wheelhouse.
    data = with_package(unpacked, "Doubler")
    payload, _ = await builder.upload(
        data, requirements=f"{PKG_NAME}==0.1.0\nnumpy>=1.20\nscikit-learn\n"
    )

    event = await builder.result(payload.version_id)

    assert event.type == BUILT, event.data
    plan = event.data["dependency_plan"]
    assert plan["to_install"] == [f"{PKG_NAME}==0.1.0"]
    assert [i["name"] for i in plan["missing"]] == [PKG_NAME]
    assert [w["file"] for w in plan["wheels"]] == [wheel.name]  # numpy: already in the image
    assert plan["cold_start"]["wheels"] == 1
    prefix = f"models/{payload.owner_id}/{payload.model_id}/v1/wheelhouse/"
    assert event.data["wheelhouse_uri"] == builder.store.uri_for(prefix + "x")[:-1]
    stored = await builder.store.read_bytes(prefix + wheel.name)
    assert stored == wheel.read_bytes()
    assert event.data["signature"]["n_features_in"] == 2
    assert event.data["signature"]["smoke"]["predict"]["sample"] == [0.0]


async def test_pickle_that_runs_a_command_is_rejected_by_the_scan(
    start_builder: Any, tmp_path: Path
) -> None:
    builder = await start_builder()
    marker = tmp_path / "scanned-marker"
    payload, _ = await builder.upload(hostile_pickle(RunsCommand(f"touch {marker}")))

    event = await builder.result(payload.version_id)

    assert event.type == FAILED
    assert event.data["stage"] == "static"
    assert "posix.system" in event.data["reason"]
    assert "dangerous" in event.data["reason"]
    report = await builder.report(event)
    assert report["failure"]["stage"] == "static"
    assert [s["stage"] for s in report["steps"]] == ["fetch", "static"]
    assert not marker.exists()


class _Listener:
    """A TCP server on the host's loopback counting the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


async def test_with_the_scan_off_the_command_runs_only_inside_the_sandbox(
    start_builder: Any, tmp_path: Path
) -> None:
    builder = await start_builder(reject_dangerous_globals=False)
    token = uuid.uuid4().hex
    tmp_marker = Path(f"/tmp/kubeserve-marker-{token}")
    test_marker = tmp_path / f"marker-{token}"
    secret = tmp_path / "secret.txt"
    secret.write_text(f"SECRET-{token}")
    listener = _Listener()
    command = (
        f"echo PWNED-{token}; cat {secret}; "
        f"echo x > {tmp_marker}; echo x > {test_marker}; echo x > ./cwd-marker-{token}; "
        f"bash -c 'echo hi > /dev/tcp/127.0.0.1/{listener.port}' 2>/dev/null "
        f"&& echo NET-OPEN-{token} || echo NET-BLOCKED-{token}"
    )
    try:
        payload, _ = await builder.upload(hostile_pickle(RunsCommand(command)))
        event = await builder.result(payload.version_id)
    finally:
        listener.close()

    # os.system returned an int: the trial loaded no model, so the build fails at the trial...
    assert event.type == FAILED
    assert event.data["stage"] == "trial"
    assert "has no predict()" in event.data["reason"]
    report = await builder.report(event)
    assert any("not enforced" in w and "posix.system" in w for w in report["warnings"])
    trial = report["steps"][-1]["details"]
    assert trial["sandbox"] == "sandbox"
    # ...the command did run, in the child...
    assert f"PWNED-{token}" in trial["output_tail"]
    # ...but could neither write outside its throwaway directory nor reach the network.
    leaked = [p for p in (tmp_marker, test_marker, Path.cwd() / f"cwd-marker-{token}")]
    assert not any(p.exists() for p in leaked)
    assert f"SECRET-{token}" not in trial["output_tail"]  # nor read the builder's files
    assert f"NET-BLOCKED-{token}" in trial["output_tail"]
    assert f"NET-OPEN-{token}" not in trial["output_tail"]
    assert listener.accepted == 0


@pytest.mark.timeout(600)
async def test_bad_versions_fail_with_stage_and_reason_and_the_next_one_builds(
    start_builder: Any, wheel_index: Any
) -> None:
    # Two builds at a time; limits low enough to keep the suite quick. The wall clock leaves
    # room for 5 s of CPU on a machine shared with other jobs (a load of 14 on 2 cores was seen).
    builder = await start_builder(
        build_concurrency=2, trial_cpu_seconds=5, trial_timeout_seconds=60
    )
    _, _, unpacked = wheel_index
    good = small_model()
    pkg = f"{PKG_NAME}==0.1.0"
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("corrupt", {"data": b"\x00garbage, not a model" * 50}, "static", "unrecognised"),
        ("truncated", {"data": good[: len(good) // 2]}, "static", "not a valid pickle"),
        ("empty", {"data": b""}, "static", "empty (0 bytes)"),
        ("no predict", {"data": joblib_bytes({"weights": [1, 2, 3]})}, "trial", "no predict()"),
        ("10 GiB", {"data": hostile_pickle(Allocates())}, "trial", "MemoryError"),
        (
            "endless __setstate__",
            {"data": with_package(unpacked, "Looper"), "requirements": pkg},
            "trial",
            "CPU time",
        ),
        (
            "waits forever",
            {"data": with_package(unpacked, "Sleeper"), "requirements": pkg},
            "trial",
            "wall clock",
        ),
        (
            "writes a 1 GiB file",
            {"data": with_package(unpacked, "Writer"), "requirements": pkg},
            "trial",
            "File too large",
        ),
        (
            "package no index has",
            {"data": good, "requirements": "kubeserve-no-such-package==1.0\n"},
            "wheelhouse",
            "No matching distribution",
        ),
        (
            "URL requirement",
            {"data": good, "requirements": "numpy\nevil @ https://example.invalid/e.whl\n"},
            "requirements",
            "URLs are not allowed",
        ),
        ("-e requirement", {"data": good, "requirements": "-e ./src\n"}, "requirements", "-e"),
        (
            "index option",
            {"data": good, "requirements": "--extra-index-url http://x\nnumpy\n"},
            "requirements",
            "index options",
        ),
        (
            "malformed requirement",
            {"data": good, "requirements": "numpy>=>1\n"},
            "requirements",
            "malformed",
        ),
        ("sha256 mismatch", {"data": good, "sha256": "0" * 64}, "fetch", "sha256 mismatch"),
    ]
    uploaded = []
    for name, kwargs, stage, words in cases:
        payload, _ = await builder.upload(**kwargs)
        uploaded.append((name, payload, stage, words))
    final, _ = await builder.upload(good)

    for name, payload, stage, words in uploaded:
        event = await builder.result(payload.version_id)
        assert event.type == FAILED, (name, event.data)
        assert event.data["stage"] == stage, (name, event.data)
        assert words in event.data["reason"], (name, event.data["reason"])
        assert event.data["report_uri"], name
    event = await builder.result(final.version_id)
    assert event.type == BUILT, (event.data.get("stage"), event.data.get("reason"))
    assert event.data["signature"]["n_features_in"] == 2


async def test_duplicate_uploads_make_one_build_and_one_result(
    start_builder: Any, database_url: str
) -> None:
    builder = await start_builder()
    payload, event = await builder.upload(small_model())
    await builder.publish(event)  # the same delivery again
    again = event.model_copy(update={"id": str(uuid.uuid4())})
    await builder.publish(again)  # the registry announcing the same version twice
    sentinel, _ = await builder.upload(small_model())

    first = await builder.result(payload.version_id)
    await builder.result(sentinel.version_id)  # built after every duplicate was consumed

    assert first.type == BUILT
    assert len(builder.results_for(payload.version_id)) == 1
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT status, attempts FROM builder.builds WHERE version_id = $1",
            payload.version_id,
        )
    finally:
        await conn.close()
    assert [(r["status"], r["attempts"]) for r in rows] == [("succeeded", 1)]
