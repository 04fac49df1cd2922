"""The deployer's nested settings (`local`, `autoscale`, `tenant_retire`): every variable name
operators, charts and scripts set before the settings were nested still lands in its nested
model, as does the new nested spelling; keyword arguments by the flat name (tests, the
embedded mode) too; the backend and the services run on those models; the README documents
every variable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kubeserve_cli.embedded import service_settings
from kubeserve_deployer.backends.local.backend import LocalBackend
from kubeserve_deployer.bootstrap import bootstrap
from kubeserve_deployer.settings import DeployerSettings
from pydantic import ValidationError

README = Path(__file__).resolve().parents[1] / "README.md"

# The flat variables (KUBESERVE_<NAME>) of the settings before they were nested, a value each
# (never the default) and where it must land.
PREVIOUS: dict[str, tuple[str, str, Any]] = {
    "INSECURE_NO_SANDBOX": ("1", "local.insecure_no_sandbox", True),
    "USE_WARM_POOL": ("false", "local.use_warm_pool", False),
    "RUNTIME_PYTHON": ("/opt/py/bin/python3", "local.runtime_python", "/opt/py/bin/python3"),
    "POOL_START_TIMEOUT": ("61", "local.pool_start_timeout", 61.0),
    "POOL_REQUEST_TIMEOUT": ("11", "local.pool_request_timeout", 11.0),
    "REPLICA_START_TIMEOUT": ("62", "local.replica_start_timeout", 62.0),
    "HEALTH_INTERVAL": ("2.5", "local.health_interval", 2.5),
    "HEALTH_TIMEOUT": ("1.5", "local.health_timeout", 1.5),
    "UNHEALTHY_THRESHOLD": ("4", "local.unhealthy_threshold", 4),
    "RESTART_BACKOFF_BASE": ("0.7", "local.restart_backoff_base", 0.7),
    "RESTART_BACKOFF_MAX": ("31", "local.restart_backoff_max", 31.0),
    "STOP_GRACE": ("6", "local.stop_grace", 6.0),
    "STARTING_POLL_INTERVAL": ("0.02", "local.starting_poll_interval", 0.02),
    "FETCH_TIMEOUT": ("301", "local.fetch_timeout", 301.0),
    "STOP_REPLICAS_ON_EXIT": ("true", "local.stop_replicas_on_exit", True),
    "AUTOSCALE_INTERVAL": ("0.5", "autoscale.interval", 0.5),
    "AUTOSCALE_STABLE_WINDOW": ("30", "autoscale.stable_window", 30.0),
    "AUTOSCALE_PANIC_WINDOW": ("3", "autoscale.panic_window", 3.0),
    "AUTOSCALE_SCALE_DOWN_DELAY": ("20", "autoscale.scale_down_delay", 20.0),
    "AUTOSCALE_SCALE_TO_ZERO_AFTER": ("120", "autoscale.scale_to_zero_after", 120.0),
    "TENANT_RETIRE_GRACE_SECONDS": ("600", "tenant_retire.grace_seconds", 600.0),
    "TENANT_RETIRE_CHECK_SECONDS": ("30", "tenant_retire.check_seconds", 30.0),
    # Beside them and not nested: the reconcile loop's (either backend) and the local state.
    "MAX_START_FAILURES": ("5", "max_start_failures", 5),
    "RECONCILE_INTERVAL": ("3", "reconcile_interval", 3.0),
    "RUNTIME_DIR": ("/var/lib/ks", "runtime_dir", Path("/var/lib/ks")),
}
GROUPS = ("local", "autoscale", "tenant_retire")


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBESERVE_HOME", str(tmp_path))  # dev mode writes its secret there


def _get(settings: DeployerSettings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_every_previous_variable_lands_in_its_nested_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, (value, _, _) in PREVIOUS.items():
        monkeypatch.setenv(f"KUBESERVE_{name}", value)
    settings = DeployerSettings(dev_mode=True)
    for name, (_, path, expected) in PREVIOUS.items():
        assert _get(settings, path) == expected, name


def test_the_table_covers_every_nested_field() -> None:
    # A new nested field gets its line above (and in the README): its flat name is a promise.
    flat = DeployerSettings.flat_names().values()
    nested = {f"{group}.{name}" for group, name in flat if group in GROUPS}
    assert nested == {path for _, path, _ in PREVIOUS.values() if "." in path}


def test_the_nested_spelling_works_and_outranks_the_flat_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBESERVE_LOCAL_STOP_GRACE", "7")
    monkeypatch.setenv("KUBESERVE_USE_WARM_POOL", "false")
    monkeypatch.setenv("KUBESERVE_LOCAL_USE_WARM_POOL", "true")
    monkeypatch.setenv("KUBESERVE_LOCAL", '{"health_timeout": 0.25}')  # the whole group as JSON
    settings = DeployerSettings(dev_mode=True)
    assert settings.local.stop_grace == 7.0
    assert settings.local.use_warm_pool is True
    assert settings.local.health_timeout == 0.25


def test_keyword_arguments_by_flat_name_outrank_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBESERVE_USE_WARM_POOL", "false")
    monkeypatch.setenv("KUBESERVE_LOCAL_HEALTH_INTERVAL", "9")
    monkeypatch.setenv("KUBESERVE_AUTOSCALE_INTERVAL", "4")
    settings = DeployerSettings(
        dev_mode=True,
        use_warm_pool=True,
        health_interval=0.3,
        autoscale_interval=0.2,
        tenant_retire_check_seconds=30,
        k8s_runtime_image="reg.example/rt:2",
    )
    assert settings.local.use_warm_pool is True
    assert settings.local.health_interval == 0.3
    assert settings.autoscale.interval == 0.2
    assert settings.tenant_retire.check_seconds == 30.0
    assert settings.k8s.runtime_image == "reg.example/rt:2"
    # A nested model passed whole, then a flat override on top of it.
    again = DeployerSettings.model_validate({**settings.model_dump(), "stop_grace": 2.0})
    assert again.local.stop_grace == 2.0 and again.local.health_interval == 0.3


def test_the_embedded_mode_keeps_its_replicas_policy(tmp_path: Path) -> None:
    # `kubeserve up` passes the same flat overrides to every service's settings.
    overrides = {"stop_replicas_on_exit": True, "prometheus_single_process": True}
    settings = service_settings("deployer", tmp_path, {"deployer": 8084}, "127.0.0.1", overrides)
    assert isinstance(settings, DeployerSettings)
    assert settings.local.stop_replicas_on_exit is True


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("KUBESERVE_HEALTH_INTERVAL", "0", "local.health_interval"),
        ("KUBESERVE_USE_WARM_POOL", "maybe", "local.use_warm_pool"),
        ("KUBESERVE_LOCAL_NO_SUCH_SETTING", "1", "local.no_such_setting"),
        ("KUBESERVE_AUTOSCALE_INTERVAL", "-1", "autoscale.interval"),
        # The grace must fit in the retirement queue's delivery limit: named at start-up.
        ("KUBESERVE_TENANT_RETIRE_GRACE_SECONDS", "1e9", "TENANT_RETIRE_GRACE_SECONDS must fit"),
    ],
)
def test_invalid_values_are_refused_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=re.escape(problem)):
        DeployerSettings(dev_mode=True)


def test_the_backend_and_services_run_on_the_nested_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBESERVE_USE_WARM_POOL", "false")
    monkeypatch.setenv("KUBESERVE_INSECURE_NO_SANDBOX", "1")
    monkeypatch.setenv("KUBESERVE_AUTOSCALE_STABLE_WINDOW", "4")
    monkeypatch.setenv("KUBESERVE_AUTOSCALE_PANIC_WINDOW", "10")  # longer: cut to the stable one
    monkeypatch.setenv("KUBESERVE_TENANT_RETIRE_GRACE_SECONDS", "90")
    container = bootstrap(DeployerSettings(dev_mode=True, home=tmp_path))
    backend = container.backend
    assert isinstance(backend, LocalBackend)
    assert backend.config is container.settings.local
    assert backend.pool is None  # no warm pool: plain processes
    assert backend.sandboxes is None and backend.gate is None  # the opt-out
    assert backend.dir == (tmp_path / "runtime").resolve()
    assert container.autoscaler is not None
    assert container.autoscaler.tuning.stable_window == 4.0
    assert container.autoscaler.tuning.panic_window == 4.0
    assert container.tenants.retire.grace_seconds == 90.0


def test_every_variable_is_documented_in_the_readme() -> None:
    text = README.read_text()
    for name in PREVIOUS:
        assert f"`KUBESERVE_{name}`" in text, name
    assert "`KUBESERVE_LOCAL_<FIELD>`" in text  # the nested spelling, where it is another
