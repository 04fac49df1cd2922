"""Settings of the deployer service (environment variables `KUBESERVE_*`).

The artifact-store fields come from `ArtifactStoreSettings` (the same ones the registry and
builder read), so the embedded mode shares one artifact directory. Defaults suit the embedded
mode: the `local` runtime backend keeps its cache, replica state and logs under
`{home}/runtime`.

Each component's settings are one nested model that is that component's config (`local`,
`autoscale`, `tenant_retire`, `k8s`), so bootstrap passes the object instead of copying fields.
Every nested field keeps the flat name it had before it was nested: `flat_names()` derives them
from the nested models, `FlatVariables` reads them from the environment and `_nest_flat_names`
takes them as keyword arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from kubeserve_common.storage.settings import ArtifactStoreSettings
from pydantic import BaseModel, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.backends.local.settings import LocalBackendSettings
from kubeserve_deployer.services.autoscaler import AutoscalerSettings
from kubeserve_deployer.services.tenants import TenantRetireSettings


class FlatVariables(PydanticBaseSettingsSource):
    """`KUBESERVE_<FLAT NAME>` of every nested field whose flat name is not already its nested
    spelling (`KUBESERVE_AUTOSCALE_INTERVAL` is both; `KUBESERVE_USE_WARM_POOL` is only the
    flat one of `local.use_warm_pool`), read into its group."""

    def __init__(self, settings_cls: type[BaseSettings], names: dict[str, tuple[str, str]]) -> None:
        super().__init__(settings_cls)
        self.names = names

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # not asked: __call__ reads every name at once

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", "")).lower()
        environ = {k.lower(): v for k, v in os.environ.items()}
        found: dict[str, Any] = {}
        for flat, (group, name) in self.names.items():
            value = environ.get(prefix + flat)
            if value is not None and flat != f"{group}_{name}":
                found.setdefault(group, {})[name] = value
        return found


class DeployerSettings(ArtifactStoreSettings):
    # `KUBESERVE_K8S_RUNTIME_IMAGE` -> k8s.runtime_image: split once after the prefix, so the
    # nested model keeps the flat variable names (field names with underscores stay whole).
    model_config = SettingsConfigDict(env_nested_delimiter="_", env_nested_max_split=1)

    port: int = 8084
    runtime_backend: Literal["local", "kubernetes"] = Field(
        default="local",
        description="Where replicas run: `local` processes, or Helm releases of "
        "charts/model-serving in per-tenant namespaces (`kubernetes`).",
    )
    runtime_dir: Path | None = Field(
        default=None, description="Local backend state: artifact cache, replica files, logs."
    )
    # -- quota (per user, across all of the user's deployments) ---------------------------------
    quota_max_replicas: int = Field(default=5, ge=1, description="Replicas a user may run.")
    quota_cpu: float = Field(default=2.0, gt=0, description="CPU-equivalents a user may use.")
    replica_cpu: float = Field(default=0.4, gt=0, description="CPU-equivalents of one replica.")
    quota_memory_mib: int = Field(
        default=4096, ge=64, description="Memory (MiB) a user's replicas may use together."
    )
    replica_memory_mib: int = Field(
        default=768, ge=64, description="Memory limit (MiB) of one replica (local: its cgroup)."
    )
    recent_events: int = Field(default=20, ge=1, le=200)
    # -- the reconcile loop (either backend) ---------------------------------------------------
    max_start_failures: int = Field(
        default=3, ge=1, description="Crashes before first ready that fail a deploy."
    )
    reconcile_interval: float = Field(
        default=2.0, gt=0, description="Idle pass period; passes run at once on events."
    )

    # -- nested groups, each the config of one component ---------------------------------------
    # local backend: KUBESERVE_<FIELD> as before (KUBESERVE_USE_WARM_POOL), or nested,
    # KUBESERVE_LOCAL_<FIELD>
    local: LocalBackendSettings = Field(default_factory=LocalBackendSettings)
    # autoscaler (issue 12; drives the local backend, Kubernetes uses the HPA):
    # KUBESERVE_AUTOSCALE_<FIELD>
    autoscale: AutoscalerSettings = Field(default_factory=AutoscalerSettings)
    # deleted users (issue 15.7): KUBESERVE_TENANT_RETIRE_<FIELD>
    tenant_retire: TenantRetireSettings = Field(default_factory=TenantRetireSettings)
    # kubernetes backend: KUBESERVE_K8S_<FIELD> (see backends/kubernetes/settings.py)
    k8s: KubernetesSettings = Field(default_factory=KubernetesSettings)

    # The flat name of a nested field is its group's prefix + its name: `use_warm_pool` is
    # local.use_warm_pool, `autoscale_interval` autoscale.interval. Each flat name is a keyword
    # argument (`DeployerSettings(use_warm_pool=False)`) and a variable `KUBESERVE_<FLAT NAME>`.
    FLAT_PREFIXES: ClassVar[dict[str, str]] = {
        "local": "",
        "autoscale": "autoscale_",
        "tenant_retire": "tenant_retire_",
        "k8s": "k8s_",
    }

    @classmethod
    def flat_names(cls) -> dict[str, tuple[str, str]]:
        """Every flat name -> (group, field), from the nested models' own fields."""
        names: dict[str, tuple[str, str]] = {}
        for group, prefix in cls.FLAT_PREFIXES.items():
            model = cls.model_fields[group].annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"{group} is not a nested model")
            for name in model.model_fields:
                if prefix + name in cls.model_fields:
                    raise TypeError(f"{prefix + name} is both a field and {group}.{name}")
                names[prefix + name] = (group, name)
        return names

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_names(cls, data: Any) -> Any:
        """Keyword arguments by flat name land in their group (over the group's other values:
        they come from the caller, whose arguments outrank the environment)."""
        if not isinstance(data, dict):
            return data
        flat = cls.flat_names()
        data = dict(data)
        for key in [k for k in data if k in flat]:
            group, name = flat[key]
            nested = data.get(group)
            if isinstance(nested, BaseModel):
                nested = nested.model_dump()
            elif nested is None:
                nested = {}
            elif not isinstance(nested, Mapping):
                raise ValueError(f"{group} must be an object to take {key}")
            data[group] = {**nested, name: data.pop(key)}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # After the nested spelling: KUBESERVE_LOCAL_USE_WARM_POOL outranks
        # KUBESERVE_USE_WARM_POOL; arguments outrank both.
        flat = FlatVariables(settings_cls, cls.flat_names())
        return init_settings, env_settings, flat, dotenv_settings, file_secret_settings

    def resolved_runtime_dir(self) -> Path:
        return (self.runtime_dir or self.home / "runtime").resolve()
