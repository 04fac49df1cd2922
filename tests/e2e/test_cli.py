"""The `kubeserve` CLI as a user types it, against the embedded platform: register, create a
model, push (progress, wait for the build), deploy (wait, URL), predict from an argument, a
file and stdin, API keys, clear errors with non-zero exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform import Platform, embedded


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with embedded(tmp_path / "home") as running:
        yield running


def kubeserve(
    platform: Platform, config: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}
    env.update(XDG_CONFIG_HOME=str(config), KUBESERVE_URL=platform.url)
    return subprocess.run(
        [sys.executable, "-m", "kubeserve_cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_version_and_completion() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "kubeserve_cli", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("kubeserve ")
    script = cli("completion", "bash").stdout
    # The script completes in a real bash: subcommands of `deployments`, options of `logs`.
    probe = (
        f"{script}\n"
        'COMP_WORDS=(kubeserve deployments ""); COMP_CWORD=2; _kubeserve; echo "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(kubeserve logs some-id --f); COMP_CWORD=3; _kubeserve; "
        'echo "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    first, second = done.stdout.splitlines()[-2:]
    assert {"list", "show", "scale", "rollback", "delete"} <= set(first.split())
    assert second.split() == ["--follow"]


def test_errors_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESERVE_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path), KUBESERVE_URL="http://127.0.0.1:9")
    command = [sys.executable, "-m", "kubeserve_cli"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        run = [*command, *args]
        return subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)

    missing = cli("predict", "some-id", "-f", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "cannot read the request file" in missing.stderr and "nope.json" in missing.stderr
    # The output pipe closed before the CLI writes (`kubeserve completion bash | head -0`).
    closed = subprocess.Popen(
        [*command, "completion", "bash"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert closed.stdout is not None and closed.stderr is not None
    closed.stdout.close()
    stderr = closed.stderr.read()
    assert closed.wait(timeout=60) == 141 and stderr == ""


def test_cli_from_register_to_predict(platform: Platform, tmp_path: Path) -> None:
    config = tmp_path / "config"
    X, y = load_iris(return_X_y=True)
    model_file = tmp_path / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), model_file)

    done = kubeserve(
        platform, config, "register", "cli@example.com", "--password", "a cli passphrase 1"
    )
    assert done.returncode == 0, done.stderr
    credentials = config / "kubeserve" / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert "access_token" in json.loads(credentials.read_text())

    assert kubeserve(platform, config, "models", "create", "iris").returncode == 0
    pushed = kubeserve(platform, config, "push", "iris", str(model_file))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "v1 is Ready" in pushed.stdout
    assert "signature" in pushed.stdout

    deployed = kubeserve(platform, config, "deploy", "iris:v1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    url_line = next(line for line in deployed.stdout.splitlines() if "URL:" in line)
    deployment_id = url_line.rstrip("/").rsplit("/", 1)[-1]

    request = {"instances": [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]}
    by_arg = kubeserve(platform, config, "predict", deployment_id, json.dumps(request))
    assert by_arg.returncode == 0, by_arg.stderr
    assert json.loads(by_arg.stdout)["predictions"] == [0, 2]
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request))
    by_file = kubeserve(platform, config, "predict", deployment_id, "-f", str(request_file))
    assert json.loads(by_file.stdout)["predictions"] == [0, 2]
    by_stdin = kubeserve(platform, config, "predict", deployment_id, stdin=json.dumps(request))
    assert json.loads(by_stdin.stdout)["predictions"] == [0, 2]

    listed = kubeserve(platform, config, "deployments", "list")
    assert deployment_id in listed.stdout and "Running" in listed.stdout
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["ID", "NAME", "STATUS", "READY"]
    assert row.split()[3] == "1/1"  # kubectl's READY, not a JSON object
    as_json = kubeserve(platform, config, "deployments", "list", "-o", "json")
    [listed_one] = json.loads(as_json.stdout)
    assert listed_one["id"] == deployment_id and listed_one["replicas"] == {
        "desired": 1,
        "ready": 1,
    }
    models_json = json.loads(kubeserve(platform, config, "models", "list", "-o", "json").stdout)
    assert [m["name"] for m in models_json] == ["iris"]

    # The replica's own lines, through the gateway's logs route.
    logs = kubeserve(platform, config, "logs", deployment_id)
    assert logs.returncode == 0, logs.stderr
    assert "Application startup complete" in logs.stdout
    assert "loaded from" in logs.stdout
    tail = kubeserve(platform, config, "logs", deployment_id, "--replica", "0", "--tail", "1")
    assert tail.stdout.splitlines() == logs.stdout.splitlines()[-1:]
    no_such = kubeserve(platform, config, "logs", deployment_id, "--replica", "3")
    assert no_such.returncode == 1 and "replicas with logs: 0" in no_such.stderr

    # Usage against the quota agrees with what runs (one ready replica of this deployment).
    usage = json.loads(kubeserve(platform, config, "usage", "-o", "json").stdout)
    assert usage["running"]["replicas"] == usage["in_use"]["replicas"] == 1
    assert usage["available"]["replicas"] == usage["quota"]["replicas"] - 1
    assert [d["id"] for d in usage["deployments"]] == [deployment_id]
    usage_table = kubeserve(platform, config, "usage")
    assert usage_table.returncode == 0, usage_table.stderr
    assert usage_table.stdout.splitlines()[1].split()[:3] == ["replicas", "1", "1"]
    assert "1/1" in usage_table.stdout and "more fit in your quota" in usage_table.stdout

    key = kubeserve(platform, config, "api-keys", "create", "ci", "--deployment", deployment_id)
    assert key.returncode == 0
    secret = key.stdout.strip().splitlines()[-1]
    assert secret.startswith("ks_")
    keys = kubeserve(platform, config, "api-keys", "list")
    assert "ci" in keys.stdout and secret not in keys.stdout
    limited = kubeserve(
        platform, config, "api-keys", "create", "slow", "--rate-limit", "5", "--burst", "10"
    )
    assert limited.returncode == 0, limited.stderr
    listed_keys = json.loads(kubeserve(platform, config, "api-keys", "list", "-o", "json").stdout)
    by_name = {k["name"]: k for k in listed_keys}
    assert by_name["slow"]["rate_limit"] == {"requests_per_second": 5.0, "burst": 10}
    both = kubeserve(
        platform, config, "deploy", "iris:v1", "--replicas", "2", "--max-replicas", "3"
    )
    assert both.returncode == 2 and "either --replicas" in both.stderr
    scaled = kubeserve(
        platform, config, "deployments", "autoscale", deployment_id, "--max-replicas", "2",
        "--no-wait",
    )  # fmt: skip
    assert scaled.returncode == 0, scaled.stderr
    shown = json.loads(kubeserve(platform, config, "deployments", "show", deployment_id).stdout)
    assert shown["autoscaling"]["max_replicas"] == 2

    # Errors: a clear message on stderr and a non-zero exit code.
    bad_json = kubeserve(platform, config, "predict", deployment_id, "{not json")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    wrong_shape = kubeserve(platform, config, "predict", deployment_id, '{"instances": [[1, 2]]}')
    assert wrong_shape.returncode == 1 and "4" in wrong_shape.stderr
    unknown = kubeserve(platform, config, "models", "show", "no-such-model")
    assert unknown.returncode == 1 and "no model named" in unknown.stderr
    missing = kubeserve(platform, config, "push", "iris", str(tmp_path / "missing.joblib"))
    assert missing.returncode == 2 and "is not a file" in missing.stderr

    deleted = kubeserve(platform, config, "deployments", "delete", deployment_id)
    assert deleted.returncode == 0
    assert kubeserve(platform, config, "logout").returncode == 0
    assert not credentials.exists()
    after = kubeserve(platform, config, "models", "list")
    assert after.returncode == 1 and "kubeserve login" in after.stderr
