"""The Helm charts (charts/model-serving, charts/kubeserve) rendered with the real Helm engine
(helm-python-sdk) over a matrix of values; every object checked against Kubernetes 1.30's
schemas (kubernetes-validate, strict), the pod security rules of DESIGN.md section 6, strict
lint, and the values schemas' refusal of misspelt keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeserve_builder.settings import BuilderSettings

from tests.deploy.k8s_checks import assert_restricted, pod_specs

helm = pytest.importorskip("helm_python", reason="test dependency helm-python-sdk is missing")
helm_native = pytest.importorskip("helm_python._native")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="test dependency kubernetes-validate is missing"
)
jsonschema = pytest.importorskip("jsonschema")

HERE = Path(__file__).resolve().parent
CHARTS = HERE.parents[1] / "charts"
KUBE_VERSION = "1.30.0"
COMPONENTS = ["gateway", "auth", "registry", "builder", "deployer"]
# What kube-prometheus-stack (the Prometheus Operator's CRDs) adds to the cluster's API.
PROMETHEUS_OPERATOR = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)

# The least each chart needs: identity and credentials that have no safe default.
MODEL_SERVING_REQUIRED: dict[str, Any] = {
    "deploymentId": "d-7f3a9c",
    "tenant": "u-42",
    "model": {"name": "iris", "uri": "s3://kubeserve/models/u-42/m-1/v1/"},
}
KUBESERVE_REQUIRED: dict[str, Any] = {
    "secrets": {
        "internalSecret": "0123456789abcdef0123456789abcdef",
        "jwtPrivateKey": "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n",
    },
    "externalDatabase": {"host": "postgresql.data.svc.cluster.local", "password": "db-pass"},
    "externalRabbitmq": {"host": "rabbitmq.data.svc.cluster.local", "password": "mq-pass"},
    "externalS3": {
        "endpoint": "http://minio.minio.svc.cluster.local:9000",
        "accessKeyId": "kubeserve",
        "secretAccessKey": "kubeserve-secret",
    },
}

MODEL_SERVING_CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "hpa-off": {"autoscaling": {"enabled": False}, "replicaCount": 2},
    "ingress-on": {"ingress": {"enabled": True}},
    "ingress-on-host-tls": {
        "ingress": {
            "enabled": True,
            "hostname": "ml.example.com",
            "tls": {"enabled": True, "secretName": "ml-tls"},
            "auth": {"cacheDuration": 30},
        }
    },
    "servicemonitor-off": {"serviceMonitor": {"enabled": False}},
    "servicemonitor-on": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
    "presigned-artifacts": {"artifacts": {"secretName": "kubeserve-d-artifacts", "key": "r3.json"}},
    "at-quota": {"quota": {"pods": 3}},
    "everything": {
        "autoscaling": {"targetMemoryUtilizationPercentage": 80},
        "ingress": {"enabled": True},
        "serviceMonitor": {"enabled": True},
        "s3": {"existingSecret": "tenant-s3"},
        "model": {"wheelhouseUri": "s3://kubeserve/models/u-42/m-1/v1/wheelhouse/"},
        "runtime": {"modelThreads": 2, "extraEnv": [{"name": "OMP_NUM_THREADS", "value": "1"}]},
        "pdb": {"minAvailable": 1},
        "image": {"digest": "sha256:" + "a" * 64, "pullSecrets": ["regcred"]},
        "commonAnnotations": {"kubeserve.io/owner": "u-42"},
        "tolerations": [{"key": "ml", "operator": "Exists", "effect": "NoSchedule"}],
    },
}

KUBESERVE_CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ingress-on": {"gateway": {"ingress": {"enabled": True, "hostname": "kubeserve.example.com"}}},
    "ingress-on-tls": {
        "gateway": {
            "ingress": {
                "enabled": True,
                "hostname": "kubeserve.example.com",
                "tls": {"enabled": True, "secretName": "kubeserve-tls"},
            }
        }
    },
    "servicemonitor-on": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
    "existing-secrets": {
        "secrets": {
            "existingSecret": "kubeserve-platform",
            "internalSecret": "",
            "jwtPrivateKey": "",
        },
        "externalDatabase": {"existingSecret": "pg-credentials", "password": ""},
        "externalRabbitmq": {"existingSecret": "mq-credentials", "password": ""},
        "externalS3": {
            "existingSecret": "s3-credentials",
            "accessKeyId": "",
            "secretAccessKey": "",
        },
    },
    "cluster-wide-rbac-no-guard": {
        "deployer": {"rbac": {"tenantAccess": "clusterWide", "namespaceGuard": False}}
    },
    "no-migrations-job": {"migrations": {"enabled": False}, "config": {"migrateOnStart": True}},
    "everything": {
        "gateway": {"ingress": {"enabled": True}, "corsOrigins": ["https://app.example.com"]},
        "auth": {"adminEmails": ["ops@example.com"]},
        "serviceMonitor": {"enabled": True},
        "global": {"imageRegistry": "registry.example.com", "imagePullSecrets": ["regcred"]},
        "commonLabels": {"team": "ml-platform"},
        "commonAnnotations": {"example.com/owner": "ml-platform"},
        "config": {"extra": {"KUBESERVE_GATEWAY_MAX_UPLOAD_BYTES": 1073741824}},
        "externalDatabase": {"options": "ssl=require"},
        "externalRabbitmq": {"scheme": "amqps", "port": 5671, "vhost": "kubeserve"},
        "secrets": {
            "jwtPreviousPrivateKey": "-----BEGIN PRIVATE KEY-----\nold\n-----END PRIVATE KEY-----\n"
        },
    },
}

# Not part of the restricted matrix: the builder's documented opt-in for bubblewrap.
BUILDER_USERNS = {"builder": {"sandbox": {"userNamespaces": {"enabled": True}}}}


# -- helpers -------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def values_for(chart: str, case: dict[str, Any]) -> dict[str, Any]:
    required = MODEL_SERVING_REQUIRED if chart == "model-serving" else KUBESERVE_REQUIRED
    return deep_merge(required, case)


def render(
    chart: str,
    values: dict[str, Any],
    *,
    name: str = "rel",
    namespace: str = "ns",
    api_versions: tuple[str, ...] = PROMETHEUS_OPERATOR,
) -> list[dict[str, Any]]:
    """Every object the chart renders, hooks included, parsed from YAML, for a cluster serving
    `api_versions` beyond the built-in ones (`.Capabilities.APIVersions`; by default the
    Prometheus Operator's, as on the documented cluster; `()` for a bare cluster)."""
    loaded = helm.Chart.load(CHARTS / chart)
    # Chart.render has no api_versions argument; the engine's render options do (they are what
    # `helm template --api-versions` sets).
    options = {"name": name, "namespace": namespace, "api_versions": list(api_versions)}
    manifests = json.loads(
        helm_native.call_string(
            "helm_render", loaded._raw(), json.dumps(values), json.dumps(options)
        )
    )
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith((".yaml", ".yml")):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matches = find(objects, kind)
    assert len(matches) == 1, f"expected one {kind}, got {len(matches)}"
    return matches[0]


def _platform_config(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything but the Master Dashboard's ConfigMap (tests/deploy/test_chart_observability)."""
    return [o for o in objects if not o["metadata"]["name"].endswith("-master-dashboard")]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


ALL_RENDERS = [("model-serving", n, c) for n, c in MODEL_SERVING_CASES.items()] + [
    ("kubeserve", n, c) for n, c in KUBESERVE_CASES.items()
]
RENDER_IDS = [f"{chart}:{name}" for chart, name, _ in ALL_RENDERS]

SERVICE_MONITOR_SCHEMA = json.loads((HERE / "schemas" / "servicemonitor.schema.json").read_text())


@pytest.fixture(scope="module", params=ALL_RENDERS, ids=RENDER_IDS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, str, list[dict[str, Any]]]:
    chart, name, case = request.param
    return chart, name, render(chart, values_for(chart, case))


# -- every object is valid Kubernetes --------------------------------------------------------------


def test_every_object_validates_against_kubernetes_schemas(rendered):
    chart, _, objects = rendered
    assert objects, "the chart rendered nothing"
    custom = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append(obj)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{chart}: {obj['kind']}/{obj['metadata']['name']} is invalid at "
                f"{'/'.join(map(str, exc.path))}: {exc.message}"
            )
    # Only CRDs may lack a built-in schema; they get a closed schema of their own.
    assert {o["kind"] for o in custom} <= {"ServiceMonitor"}
    for obj in custom:
        jsonschema.validate(obj, SERVICE_MONITOR_SCHEMA)


def test_strict_validation_is_not_vacuous():
    """The validator really rejects an unknown field (so a pass above means something)."""
    objects = render("model-serving", values_for("model-serving", {}))
    deployment = one(objects, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    monitor = one(
        render("model-serving", values_for("model-serving", {"serviceMonitor": {"enabled": True}})),
        "ServiceMonitor",
    )
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)


def test_names_and_labels_are_well_formed(rendered):
    chart, _, objects = rendered
    for obj in objects:
        meta = obj["metadata"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", meta["name"]), meta["name"]
        assert len(meta["name"]) <= 63
        labels = meta.get("labels", {})
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        assert labels.get("app.kubernetes.io/instance") == "rel"
        assert labels.get("app.kubernetes.io/part-of") == "kubeserve"
        if chart == "model-serving":
            assert labels["kubeserve.io/deployment-id"] == "d-7f3a9c"
            assert labels["kubeserve.io/tenant"] == "u-42"


# -- pod security (DESIGN.md section 6) ------------------------------------------------------------


def test_every_pod_template_is_restricted(rendered):
    chart, _, objects = rendered
    pods = 0
    for obj in objects:
        for pod in pod_specs(obj):
            pods += 1
            where = f"{chart}:{obj['kind']}/{obj['metadata']['name']}"
            is_deployer = (
                obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "deployer"
            )
            assert_restricted(where, pod, token_allowed=chart == "kubeserve" and is_deployer)
    assert pods >= 1


def test_only_the_deployer_gets_a_service_account_token():
    objects = render("kubeserve", values_for("kubeserve", {}))
    tokens = {}
    for obj in objects:
        for pod in pod_specs(obj):
            tokens[obj["metadata"]["name"]] = pod.get("automountServiceAccountToken")
    assert tokens == {
        "rel-kubeserve-gateway": False,
        "rel-kubeserve-auth": False,
        "rel-kubeserve-registry": False,
        "rel-kubeserve-builder": False,
        "rel-kubeserve-deployer": True,
        "rel-kubeserve-migrations": False,
    }
    accounts = {
        sa["metadata"]["name"]: sa["automountServiceAccountToken"]
        for sa in find(objects, "ServiceAccount")
    }
    assert accounts == {"rel-kubeserve": False, "rel-kubeserve-deployer": True}


def test_builder_refuses_weak_isolation_unless_told():
    builder = next(
        d for d in find(ks({}), "Deployment") if d["metadata"]["name"].endswith("-builder")
    )
    env = env_of(builder["spec"]["template"]["spec"]["containers"][0])
    assert env["KUBESERVE_INSECURE_NO_SANDBOX"]["value"] == "false"
    # Every KUBESERVE_ variable the chart gives the builder is one of its settings or part of
    # another's value ($(KUBESERVE_DB_PASSWORD) in the database URL): a chart value whose
    # variable nothing reads would be a setting silently ignored.
    prefix = BuilderSettings.model_config.get("env_prefix", "")
    read = {f"{prefix}{name}".upper() for name in BuilderSettings.model_fields}
    read |= set(re.findall(r"\$\((\w+)\)", json.dumps(env)))
    assert [name for name in env if name.startswith("KUBESERVE_") and name not in read] == []
    gvisor = {"builder": {"runtimeClassName": "gvisor", "sandbox": {"allowWeak": True}}}
    builder = next(
        d for d in find(ks(gvisor), "Deployment") if d["metadata"]["name"].endswith("-builder")
    )
    pod = builder["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert env_of(pod["containers"][0])["KUBESERVE_INSECURE_NO_SANDBOX"]["value"] == "true"
    assert_restricted("builder on gvisor", pod, token_allowed=False)


def test_builder_user_namespace_opt_in_relaxes_only_what_bubblewrap_needs():
    # (A cluster without the Prometheus Operator: only built-in kinds, all strictly validated.)
    default = render("kubeserve", values_for("kubeserve", {}), api_versions=())
    opted = render("kubeserve", values_for("kubeserve", BUILDER_USERNS), api_versions=())
    for obj in opted:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    by_name = {o["metadata"]["name"]: o for o in find(opted, "Deployment")}
    builder = by_name.pop("rel-kubeserve-builder")["spec"]["template"]["spec"]
    assert builder["hostUsers"] is False
    assert builder["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    container = builder["containers"][0]["securityContext"]
    assert container["procMount"] == "Unmasked"
    assert container["appArmorProfile"] == {"type": "Unconfined"}
    # Still non-root, no escalation, nothing added, read-only root.
    assert container["runAsNonRoot"] is True and container["allowPrivilegeEscalation"] is False
    assert (
        container["capabilities"] == {"drop": ["ALL"]}
        and container["readOnlyRootFilesystem"] is True
    )
    # Every other pod is unchanged.
    before = {o["metadata"]["name"]: o for o in find(default, "Deployment")}
    for name, obj in by_name.items():
        assert obj["spec"]["template"]["spec"] == before[name]["spec"]["template"]["spec"], name
    # The default builder has none of it.
    default_builder = before["rel-kubeserve-builder"]["spec"]["template"]["spec"]
    assert "hostUsers" not in default_builder
    assert "procMount" not in default_builder["containers"][0]["securityContext"]


# -- model-serving specifics -----------------------------------------------------------------------


def ms(case: dict[str, Any]) -> list[dict[str, Any]]:
    return render(
        "model-serving", values_for("model-serving", case), name="d-7f3a9c", namespace="user-u-42"
    )


def test_model_serving_runtime_container_is_wired_from_values():
    objects = ms(MODEL_SERVING_CASES["everything"])
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = env_of(c)
    assert env["KUBESERVE_MODEL_URI"]["value"] == "s3://kubeserve/models/u-42/m-1/v1/"
    assert env["KUBESERVE_MODEL_NAME"]["value"] == "iris"
    assert env["KUBESERVE_MODEL_VERSION"]["value"] == "v1"
    assert env["KUBESERVE_DEPLOYMENT_ID"]["value"] == "d-7f3a9c"
    assert env["KUBESERVE_WHEELHOUSE_URI"]["value"].endswith("/wheelhouse/")
    assert env["KUBESERVE_HOST"]["value"] == "0.0.0.0"
    assert env["KUBESERVE_PORT"]["value"] == "8080"
    # Credentials only by reference to the Secret named in values.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[var]
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == "tenant-s3"
    assert c["image"] == "ghcr.io/kubeserve/runtime-base@sha256:" + "a" * 64
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all("emptyDir" in v for v in volumes.values())
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert env["MODEL_DIR"]["value"] == "/var/lib/kubeserve/model"
    assert env["KUBESERVE_PACKAGES_DIR"]["value"] == "/var/lib/kubeserve/packages"
    assert {"/tmp", "/var/lib/kubeserve"} <= mounts


def test_model_serving_without_credentials_secret_sets_no_static_keys():
    env = env_of(one(ms({}), "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env


def test_model_serving_service_and_autoscaling_fit_together():
    objects = ms({})
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    # The roadmap's name: model-{deployment id}, port 80 (what the gateway and Ingress address).
    assert service["metadata"]["name"] == "model-d-7f3a9c"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and port["targetPort"] == "http"
    container_ports = {
        p["name"]: p["containerPort"]
        for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert container_ports == {"http": 8080}
    assert service["spec"]["selector"].items() <= pod_labels.items()
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert (
        metric["resource"]["name"] == "cpu"
        and metric["resource"]["target"]["averageUtilization"] == 70
    )
    # The HPA owns the replica count: the Deployment must not fight it on every upgrade.
    assert "replicas" not in deployment["spec"]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_model_serving_without_hpa_sets_replicas():
    objects = ms(MODEL_SERVING_CASES["hpa-off"])
    assert not find(objects, "HorizontalPodAutoscaler")
    assert one(objects, "Deployment")["spec"]["replicas"] == 2


def test_model_serving_default_fits_the_tenant_quota():
    """Three replicas plus one surge pod stay within 2 CPU / 4 GiB of limits and 5 pods."""
    objects = ms({})
    deployment = one(objects, "Deployment")
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    pods = one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] + surge
    cpu = c["resources"]["limits"]["cpu"]
    millicores = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
    mem = c["resources"]["limits"]["memory"]
    mib = int(mem[:-2]) * (1024 if mem.endswith("Gi") else 1)
    assert surge == 1 and pods <= 5 and pods * millicores <= 2000 and pods * mib <= 4096


# nginx's view of an ImplementationSpecific path with use-regex: `location ~* "^<path>"`, then
# `rewrite "(?i)<path>" <rewrite-target> break;` (ingress-nginx's template).
def nginx_route(ingress: dict[str, Any], uri: str) -> tuple[str, str] | None:
    """(backend Service, upstream path) nginx would use for `uri`, None for no location."""
    target = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"]
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            found = re.match("^" + path["path"], uri, re.IGNORECASE)
            if found is None:
                continue
            upstream = re.sub(r"\$(\d)", lambda m: found.group(int(m.group(1))) or "", target)
            return path["backend"]["service"]["name"], upstream
    return None


def test_model_serving_ingress_routes_the_gateways_paths_to_the_runtimes():
    ingress = one(ms({"ingress": {"enabled": True}}), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-url"].startswith(
        "http://kubeserve-gateway."
    )
    assert "X-KubeServe-Tenant" in annotations[
        "nginx.ingress.kubernetes.io/auth-response-headers"
    ].split(",")
    assert annotations["nginx.ingress.kubernetes.io/use-regex"] == "true"
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        # ingress-nginx >= 1.12 refuses regex characters in Prefix/Exact paths.
        assert path["pathType"] == "ImplementationSpecific"
        assert path["backend"]["service"] == {"name": "model-d-7f3a9c", "port": {"name": "http"}}
    base = "/api/v1/predict/d-7f3a9c"
    for request, runtime_path in [
        # The deployment's root: the runtime's root, where GET is KServe V1's liveness and POST
        # the simple predict (libs/runtime's test_the_root_is_liveness_for_get_and_...), as the
        # gateway routes GET to `/` and POST to `/predict`; nginx cannot route by method.
        (base, "/"),
        (base + "/", "/"),
        (base + "/v2/models/iris/infer", "/v2/models/iris/infer"),
        (base + "/v2/models/iris/versions/v1/infer", "/v2/models/iris/versions/v1/infer"),
        (base + "/v2/health/ready", "/v2/health/ready"),
        (base + "/v2", "/v2"),
        (base + "/v1/models/iris:predict", "/v1/models/iris:predict"),
    ]:
        assert nginx_route(ingress, request) == ("model-d-7f3a9c", runtime_path), request
    for elsewhere in [
        base + "/predict",  # not a gateway path either
        base + "/v3/x",
        base + "/v2x",
        base + "X",
        "/api/v1/predict/d-7f3a9cX/v2/models/iris/infer",
        "/api/v1/models",
        "/predict",
    ]:
        assert nginx_route(ingress, elsewhere) is None, elsewhere


def test_model_serving_service_monitor_is_on_and_selected_by_kube_prometheus_stack():
    monitor = one(ms({}), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["user-u-42"]}
    service = one(ms({}), "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    relabelled = one(ms(MODEL_SERVING_CASES["servicemonitor-on"]), "ServiceMonitor")
    assert relabelled["metadata"]["labels"]["release"] == "kps"
    assert not find(ms({}), "Ingress")
    assert not find(ms(MODEL_SERVING_CASES["servicemonitor-off"]), "ServiceMonitor")


def strategy(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"]


def test_model_serving_rollout_surge_fits_the_pod_quota():
    """quota.pods is what the tenant's quota leaves this release: the surge pod only while it
    fits above the replica maximum, else one pod replaced at a time."""
    assert strategy(ms({})) == {"maxSurge": 1, "maxUnavailable": 0}  # HPA max 3 + 1 <= 5
    assert strategy(ms(MODEL_SERVING_CASES["at-quota"])) == {"maxSurge": 0, "maxUnavailable": 1}
    no_hpa = {"autoscaling": {"enabled": False}, "replicaCount": 4}
    assert strategy(ms(no_hpa)) == {"maxSurge": 1, "maxUnavailable": 0}
    assert strategy(ms({**no_hpa, "replicaCount": 5})) == {"maxSurge": 0, "maxUnavailable": 1}
    more = {"updateStrategy": {"maxSurge": 3, "maxUnavailable": 0}, "quota": {"pods": 5}}
    assert strategy(ms(more)) == {"maxSurge": 2, "maxUnavailable": 0}


def test_model_serving_refuses_replicas_the_quota_cannot_hold():
    with pytest.raises(
        helm.HelmError, match=r"autoscaling\.maxReplicas \(6\) exceeds quota\.pods \(5\)"
    ):
        ms({"autoscaling": {"maxReplicas": 6}})
    with pytest.raises(helm.HelmError, match=r"replicaCount \(4\) exceeds quota\.pods \(3\)"):
        ms({"autoscaling": {"enabled": False}, "replicaCount": 4, "quota": {"pods": 3}})
    with pytest.raises(helm.HelmError, match="minReplicas"):
        ms({"autoscaling": {"minReplicas": 4, "maxReplicas": 3}})
    with pytest.raises(helm.HelmError, match="maxSurge"):
        ms({"updateStrategy": {"maxSurge": "25%"}})  # a percentage cannot be checked


def test_model_serving_with_presigned_artifacts_holds_no_credentials():
    objects = ms(MODEL_SERVING_CASES["presigned-artifacts"])
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)
    assert env["KUBESERVE_ARTIFACT_MANIFEST"]["value"] == "/etc/kubeserve/artifacts/manifest.json"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["artifacts"]["secret"] == {
        "secretName": "kubeserve-d-artifacts",
        "defaultMode": 0o440,
        "items": [{"key": "r3.json", "path": "manifest.json"}],  # this revision's only
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["artifacts"] == {
        "name": "artifacts",
        "mountPath": "/etc/kubeserve/artifacts",
        "readOnly": True,
    }
    # Without a manifest Secret nothing is mounted (a hand install reads model.uri itself).
    assert "artifacts" not in {
        v["name"] for v in one(ms({}), "Deployment")["spec"]["template"]["spec"]["volumes"]
    }


def test_model_serving_deployment_ids_leave_room_for_the_service_prefix():
    too_long = "d" * 58
    with pytest.raises(helm.HelmError, match="deploymentId"):
        ms({"deploymentId": too_long})
    service = one(ms({"deploymentId": "d" * 57}), "Service")
    assert len(service["metadata"]["name"]) == 63


def test_model_serving_refuses_a_missing_identity():
    with pytest.raises(helm.HelmError, match="deploymentId is required"):
        render("model-serving", {"tenant": "u", "model": {"name": "m", "uri": "s3://b/k"}})
    with pytest.raises(helm.HelmError, match=r"model\.uri is required"):
        render("model-serving", {"deploymentId": "d", "tenant": "u", "model": {"name": "m"}})


# -- kubeserve specifics ---------------------------------------------------------------------------


def ks(case: dict[str, Any]) -> list[dict[str, Any]]:
    return render(
        "kubeserve", values_for("kubeserve", case), name="kubeserve", namespace="kubeserve"
    )


def test_kubeserve_runs_every_service_behind_its_service():
    objects = ks({})
    deployments = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in find(objects, "Deployment")
    }
    services = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]: s for s in find(objects, "Service")
    }
    assert set(deployments) == set(services) == set(COMPONENTS)
    ports = {"gateway": 8080, "auth": 8081, "registry": 8082, "builder": 8083, "deployer": 8084}
    for component, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert c["command"] == [f"kubeserve-{component}"]
        assert c["args"] == ["serve", "--host", "0.0.0.0", "--port", str(ports[component])]
        assert c["image"] == f"ghcr.io/kubeserve/{component}:0.1.0"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert (
            services[component]["spec"]["selector"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        )
        assert c["envFrom"] == [{"configMapRef": {"name": "kubeserve"}}]


def test_kubeserve_config_and_secrets_are_wired():
    objects = ks({})
    config = one(_platform_config(objects), "ConfigMap")["data"]
    assert config["KUBESERVE_DEV_MODE"] == "false"
    assert config["KUBESERVE_AUTH_URL"] == "http://kubeserve-auth.kubeserve.svc:80"
    assert config["KUBESERVE_ARTIFACT_STORE_URL"] == "s3://kubeserve"
    assert config["KUBESERVE_S3_ENDPOINT_URL"] == "http://minio.minio.svc.cluster.local:9000"
    # No secret value lands in the ConfigMap.
    blob = json.dumps(config)
    for secret in ("db-pass", "mq-pass", "kubeserve-secret", "0123456789abcdef", "PRIVATE KEY"):
        assert secret not in blob
    secrets = {s["metadata"]["name"]: s for s in find(objects, "Secret")}
    assert set(secrets["kubeserve"]["data"]) == {
        "internal-secret",
        "jwt-private-key",
        "database-password",
        "rabbitmq-password",
        "s3-access-key-id",
        "s3-secret-access-key",
    }
    deployments = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in find(objects, "Deployment")
    }
    for component, deployment in deployments.items():
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        assert env["KUBESERVE_INTERNAL_SECRET"]["valueFrom"]["secretKeyRef"] == {
            "name": "kubeserve",
            "key": "internal-secret",
        }
        assert env["KUBESERVE_DATABASE_URL"]["value"] == (
            "postgresql+asyncpg://kubeserve:$(KUBESERVE_DB_PASSWORD)@postgresql.data.svc.cluster.local:5432/kubeserve"
        )
        assert (
            env["KUBESERVE_BROKER_URL"]["value"]
            == "amqp://kubeserve:$(KUBESERVE_BROKER_PASSWORD)@rabbitmq.data.svc.cluster.local:5672/%2F"
        )
        names = [e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]]
        # Kubernetes expands $(VAR) only from variables defined earlier in the list.
        assert names.index("KUBESERVE_DB_PASSWORD") < names.index("KUBESERVE_DATABASE_URL")
        assert names.index("KUBESERVE_BROKER_PASSWORD") < names.index("KUBESERVE_BROKER_URL")
        assert ("KUBESERVE_JWT_PRIVATE_KEY" in env) == (component == "auth")
        assert ("KUBESERVE_S3_SECRET_ACCESS_KEY" in env) == (
            component in {"registry", "builder", "deployer"}
        )
        for var in env.values():
            if "PASSWORD" in var["name"] or "SECRET" in var["name"] or "PRIVATE_KEY" in var["name"]:
                assert "value" not in var, f"{component}: {var['name']} inline"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert set(annotations) >= {"checksum/config", "checksum/secret"}


def test_kubeserve_existing_secrets_replace_the_charts_own():
    objects = ks(KUBESERVE_CASES["existing-secrets"])
    assert not find(objects, "Secret"), "no credential is left for the chart to hold"
    env = env_of(
        next(d for d in find(objects, "Deployment") if d["metadata"]["name"].endswith("-auth"))[
            "spec"
        ]["template"]["spec"]["containers"][0]
    )
    assert (
        env["KUBESERVE_INTERNAL_SECRET"]["valueFrom"]["secretKeyRef"]["name"]
        == "kubeserve-platform"
    )
    assert (
        env["KUBESERVE_JWT_PRIVATE_KEY"]["valueFrom"]["secretKeyRef"]["name"]
        == "kubeserve-platform"
    )
    assert env["KUBESERVE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg-credentials",
        "key": "database-password",
    }
    assert env["KUBESERVE_BROKER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "mq-credentials",
        "key": "rabbitmq-password",
    }
    job = one(objects, "Job")
    for c in (
        job["spec"]["template"]["spec"]["initContainers"]
        + job["spec"]["template"]["spec"]["containers"]
    ):
        assert (
            env_of(c)["KUBESERVE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
            == "pg-credentials"
        )


def test_kubeserve_refuses_missing_credentials():
    values = values_for("kubeserve", {})
    values["secrets"] = {"internalSecret": ""}
    with pytest.raises(helm.HelmError, match=r"secrets\.internalSecret is required"):
        render("kubeserve", values)
    values = values_for("kubeserve", {"externalDatabase": {"password": ""}})
    with pytest.raises(helm.HelmError, match=r"externalDatabase\.password is required"):
        render("kubeserve", values)


def test_kubeserve_migrations_job_is_a_hook_running_every_service_migration():
    objects = ks({})
    job = one(objects, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    steps = pod["initContainers"] + pod["containers"]
    assert [c["command"] + c["args"] for c in steps] == [
        [f"kubeserve-{s}", "migrate"]
        for s in ["auth", "registry", "builder", "deployer", "gateway"]
    ]
    assert [c["image"] for c in steps] == [
        f"ghcr.io/kubeserve/{s}:0.1.0"
        for s in ["auth", "registry", "builder", "deployer", "gateway"]
    ]
    # Hooks run before the release's Secret, ConfigMap and ServiceAccounts exist: the Job uses
    # its own hook Secret (created first) and inline settings, and no release ServiceAccount.
    hook_secret = next(
        s for s in find(objects, "Secret") if s["metadata"]["name"] == "kubeserve-migrations"
    )
    assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    assert "serviceAccountName" not in pod
    config = one(_platform_config(objects), "ConfigMap")["data"]
    for c in steps:
        env = env_of(c)
        assert "envFrom" not in c
        for key, value in config.items():
            assert env[key]["value"] == value
        for var in env.values():
            if "valueFrom" in var and "secretKeyRef" in var["valueFrom"]:
                assert var["valueFrom"]["secretKeyRef"]["name"] == "kubeserve-migrations"
    # The auth migration builds AuthSettings, which refuses to start without a signing key.
    assert "KUBESERVE_JWT_PRIVATE_KEY" in env_of(steps[0])
    assert not find(ks(KUBESERVE_CASES["no-migrations-job"]), "Job")


def test_kubeserve_deployer_rbac_is_least_privilege():
    objects = ks({})
    roles = {r["metadata"]["name"]: r for r in find(objects, "ClusterRole")}
    tenant = roles["kubeserve-kubeserve-deployer-tenant"]
    cluster = roles["kubeserve-kubeserve-deployer"]
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "*" not in rule.get("apiGroups", [])
            assert not {"escalate", "impersonate"} & set(rule["verbs"])
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in tenant["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    writable = {key for key, verbs in granted.items() if "create" in verbs}
    assert writable == {
        ("", "resourcequotas"),
        ("", "limitranges"),
        ("", "serviceaccounts"),
        ("", "services"),
        ("", "secrets"),
        ("", "configmaps"),
        ("apps", "deployments"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "networkpolicies"),
        ("networking.k8s.io", "ingresses"),
        ("monitoring.coreos.com", "servicemonitors"),
    }
    for read_only in [
        ("", "pods"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("apps", "replicasets"),
    ]:
        assert granted[read_only] == {"get", "list", "watch"}
    # Cluster-scoped: namespaces, and binding exactly the tenant role (perNamespace default).
    cluster_rules = {(r["apiGroups"][0], r["resources"][0]): r for r in cluster["rules"]}
    assert set(cluster_rules) == {
        ("", "namespaces"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterroles"),
    }
    bind = cluster_rules[("rbac.authorization.k8s.io", "clusterroles")]
    assert bind["verbs"] == ["bind"] and bind["resourceNames"] == [
        "kubeserve-kubeserve-deployer-tenant"
    ]
    # Only the cluster-scoped role is bound cluster-wide; nothing reads Secrets everywhere.
    (binding,) = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "kubeserve-kubeserve-deployer"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kubeserve-deployer", "namespace": "kubeserve"}
    ]
    # In its own namespace: only the leader-election Lease (several deployer replicas).
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "kubeserve"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    (role_binding,) = find(objects, "RoleBinding")
    assert role_binding["roleRef"]["name"] == role["metadata"]["name"]
    assert role_binding["subjects"] == binding["subjects"]
    env = env_of(
        next(
            d for d in find(objects, "Deployment") if d["metadata"]["name"] == "kubeserve-deployer"
        )["spec"]["template"]["spec"]["containers"][0]
    )
    assert (
        env["KUBESERVE_K8S_TENANT_CLUSTER_ROLE"]["value"] == "kubeserve-kubeserve-deployer-tenant"
    )
    assert env["KUBESERVE_K8S_TENANT_ACCESS"]["value"] == "perNamespace"


def test_kubeserve_cluster_wide_mode_binds_the_tenant_role_and_drops_bind_rights():
    objects = ks(KUBESERVE_CASES["cluster-wide-rbac-no-guard"])
    bindings = {b["roleRef"]["name"] for b in find(objects, "ClusterRoleBinding")}
    assert bindings == {"kubeserve-kubeserve-deployer", "kubeserve-kubeserve-deployer-tenant"}
    cluster = next(
        r
        for r in find(objects, "ClusterRole")
        if r["metadata"]["name"] == "kubeserve-kubeserve-deployer"
    )
    assert [r["resources"] for r in cluster["rules"]] == [["namespaces"]]
    assert not find(objects, "ValidatingAdmissionPolicy")


def test_kubeserve_namespace_guard_only_lets_the_deployer_write_in_tenant_namespaces():
    objects = ks({})
    policy = one(objects, "ValidatingAdmissionPolicy")
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    (condition,) = policy["spec"]["matchConditions"]
    assert (
        condition["expression"]
        == "request.userInfo.username == 'system:serviceaccount:kubeserve:kubeserve-deployer'"
    )
    (validation,) = policy["spec"]["validations"]
    # Evaluate the CEL expression's logic on a few requests (it only uses startsWith, == and ||/&&).
    expr = validation["expression"]
    py = expr.replace("||", " or ").replace("&&", " and ")
    py = re.sub(r"([\w.]+)\.startsWith\(", r"\1.startswith(", py)
    for namespace, group, resource, name, allowed in [
        ("user-42", "apps", "deployments", "d-1", True),
        ("", "", "namespaces", "user-42", True),
        ("user-42", "", "namespaces", "user-42", True),
        ("kubeserve", "coordination.k8s.io", "leases", "kubeserve-deployer", True),
        ("kube-system", "coordination.k8s.io", "leases", "kube-controller-manager", False),
        ("kube-system", "", "secrets", "x", False),
        ("kubeserve", "", "configmaps", "x", False),
        ("", "", "namespaces", "kube-system", False),
        ("", "rbac.authorization.k8s.io", "clusterrolebindings", "user-x", False),
    ]:
        request = type(
            "R",
            (),
            {
                "namespace": namespace,
                "name": name,
                "resource": type("Res", (), {"group": group, "resource": resource}),
            },
        )
        assert eval(py, {"request": request}) is allowed, (namespace, group, resource, name)


def test_kubeserve_gateway_ingress_and_service_monitors():
    objects = ks(KUBESERVE_CASES["ingress-on-tls"])
    ingress = one(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["kubeserve.example.com"], "secretName": "kubeserve-tls"}
    ]
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert (
        path["backend"]["service"]["name"] == "kubeserve-gateway" and path["pathType"] == "Prefix"
    )
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "2g"
    assert not find(ks({}), "Ingress")
    monitors = find(ks(KUBESERVE_CASES["servicemonitor-on"]), "ServiceMonitor")
    assert sorted(
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for m in monitors
    ) == sorted(COMPONENTS)
    assert all(m["metadata"]["labels"]["release"] == "kps" for m in monitors)


def test_platform_service_monitors_are_on_by_default_where_the_cluster_has_the_crd():
    # The documented cluster (kube-prometheus-stack installed as `kube-prometheus-stack`): one
    # ServiceMonitor per service, labelled so its Prometheus selects them, each selecting its
    # own service's Service and port.
    objects = ks({})
    monitors = find(objects, "ServiceMonitor")
    services = {s["metadata"]["name"]: s for s in find(objects, "Service")}
    assert len(monitors) == len(COMPONENTS)
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        service = services[monitor["metadata"]["name"]]
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["endpoints"][0]["port"] in {
            p["name"] for p in service["spec"]["ports"]
        }
    # A cluster without the Prometheus Operator: the same values install, without monitors
    # (applying a ServiceMonitor there would fail the whole release).
    bare = render("kubeserve", values_for("kubeserve", {}), api_versions=())
    assert not find(bare, "ServiceMonitor")
    assert {o["kind"] for o in bare} == {o["kind"] for o in objects} - {"ServiceMonitor"}
    # Labels are the operator's to choose; off is off even with the CRD.
    off = ks({"serviceMonitor": {"enabled": False}})
    assert not find(off, "ServiceMonitor")


# -- lint, install (dry run) and schema ----------------------------------------------------------


@pytest.mark.parametrize("chart", ["model-serving", "kubeserve"])
@pytest.mark.parametrize("case", ["defaults", "servicemonitor-on"])
def test_strict_lint_passes(chart, case):
    cases = MODEL_SERVING_CASES if chart == "model-serving" else KUBESERVE_CASES
    report = helm.lint(
        CHARTS / chart, values_for(chart, cases[case]), strict=True, kube_version=f"v{KUBE_VERSION}"
    )
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("chart", ["model-serving", "kubeserve"])
def test_client_dry_run_install_succeeds(chart):
    config = helm.Config(storage_driver="memory")
    release = config.install(
        helm.Chart.load(CHARTS / chart),
        "rel",
        values_for(chart, {}),
        namespace="ns",
        dry_run="client",
    )
    assert release["chart_name"] == chart
    assert "kind: Deployment" in release["manifest"]
    if chart == "kubeserve":
        # The platform's defaults install on a cluster without the Prometheus Operator's CRDs
        # (the client dry run knows only the built-in API): no object of monitoring.coreos.com.
        # (model-serving's monitor follows the deployer's KUBESERVE_K8S_SERVICE_MONITOR.)
        assert "apiVersion: monitoring.coreos.com" not in release["manifest"]


MISSPELT = [
    ("model-serving", {"replicaCont": 2}, "replicaCont"),
    ("model-serving", {"ingress": {"enabeld": True}}, "enabeld"),
    (
        "model-serving",
        {"containerSecurityContext": {"readOnlyRootFileSystem": True}},
        "readOnlyRootFileSystem",
    ),
    ("kubeserve", {"gatway": {"replicaCount": 2}}, "gatway"),
    ("kubeserve", {"builder": {"sandbox": {"userNamespace": {"enabled": True}}}}, "userNamespace"),
    ("kubeserve", {"externalDatabase": {"hostname": "pg"}}, "hostname"),
]


@pytest.mark.parametrize(
    ("chart", "typo", "key"), MISSPELT, ids=[f"{c}:{k}" for c, _, k in MISSPELT]
)
def test_values_file_with_a_misspelt_key_is_rejected(tmp_path, chart, typo, key):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(deep_merge(values_for(chart, {}), typo)))
    values = helm.values_from_yaml(values_file.read_text())
    with pytest.raises(helm.HelmValuesError) as excinfo:
        helm.Chart.load(CHARTS / chart).render(values, name="rel", namespace="ns")
    assert key in str(excinfo.value)
    assert "not allowed" in str(excinfo.value)
    report = helm.lint(CHARTS / chart, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert any(key in e for e in report["errors"]), report


@pytest.mark.parametrize("chart", ["model-serving", "kubeserve"])
def test_values_schema_is_closed_at_every_level(chart):
    """additionalProperties: false on every object whose keys are ours (maps of labels and
    pass-through Kubernetes objects aside, which Kubernetes' own schema checks once rendered)."""
    schema = json.loads((CHARTS / chart / "values.schema.json").read_text())

    def walk(node: dict[str, Any], where: str) -> Iterator[str]:
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False:
                yield where
            for key, child in node["properties"].items():
                yield from walk(child, f"{where}.{key}")
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{where}[]")

    assert list(walk(schema, chart)) == []


@pytest.mark.parametrize("chart", ["model-serving", "kubeserve"])
def test_every_value_is_documented_and_in_the_schema(chart):
    """Each leaf of values.yaml has a `## @param` line and a schema entry, and vice versa."""
    text = (CHARTS / chart / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = json.loads((CHARTS / chart / "values.schema.json").read_text())
    documented = set(re.findall(r"^\s*## @param ([\w.\-]+)", text, flags=re.M))

    def leaves(node: Any, prefix: str) -> Iterator[str]:
        if isinstance(node, dict) and node:
            for key, child in node.items():
                yield from leaves(child, f"{prefix}.{key}" if prefix else key)
        else:
            yield prefix

    def in_schema(path: str) -> bool:
        node = schema
        for part in path.split("."):
            props = node.get("properties", {})
            if part in props:
                node = props[part]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]  # a map (labels...) with a default entry
            else:
                return False
        return True

    all_leaves = set(leaves(values, ""))
    undocumented = {
        leaf
        for leaf in all_leaves
        if leaf not in documented and not any(leaf.startswith(d + ".") for d in documented)
    }
    assert undocumented == set()
    assert {leaf for leaf in all_leaves if not in_schema(leaf)} == set()
    assert {d for d in documented if not in_schema(d)} == set()
