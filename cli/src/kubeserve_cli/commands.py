"""The commands that use the platform over its public API (through `kubeserve_sdk`): account,
models, versions, deployments, predictions, logs, API keys. Read commands take `-o json|table`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from kubeserve_sdk import Client

from kubeserve_cli import config, output


class UsageError(Exception):
    pass


class Failed(Exception):
    pass


def _password(args: argparse.Namespace, confirm: bool = False) -> str:
    if args.password:
        return str(args.password)
    if env := os.environ.get("KUBESERVE_PASSWORD"):
        return env
    if not sys.stdin.isatty():
        raise UsageError("no password: pass --password, set KUBESERVE_PASSWORD or use a terminal")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != first:
        raise UsageError("the passwords differ")
    return first


# -- account -------------------------------------------------------------------------------------


def cmd_register(args: argparse.Namespace, client: Client) -> None:
    password = _password(args, confirm=True)
    user = client.register(args.email, password)
    output.step(f"registered {user.email}")
    client.login(args.email, password)
    output.info(f"logged in; credentials saved to {config.credentials_path()}")


def cmd_login(args: argparse.Namespace, client: Client) -> None:
    client.login(args.email, _password(args))
    output.step(f"logged in as {args.email}; credentials saved to {config.credentials_path()}")


def cmd_logout(args: argparse.Namespace, client: Client) -> None:
    try:
        client.logout()
    finally:
        config.clear()
    output.step("logged out")


def cmd_whoami(args: argparse.Namespace, client: Client) -> None:
    output.render(client.me(), ["id", "email", "role", "created_at"], args.output, single=True)


# -- models --------------------------------------------------------------------------------------


def cmd_models_create(args: argparse.Namespace, client: Client) -> None:
    model = client.create_model(args.name, framework=args.framework, description=args.description)
    output.step(f"created model {model.name} ({model.id})")


def cmd_models_list(args: argparse.Namespace, client: Client) -> None:
    models = list(client.iter_models())
    if args.output == "json":
        output.dump([m.to_dict() for m in models])
        return
    rows = [
        {
            **m.to_dict(),
            "latest": m.latest_version.version_tag if m.latest_version else None,
            "status": m.latest_version.status if m.latest_version else None,
        }
        for m in models
    ]
    output.table(rows, ["id", "name", "framework", "latest", "status", "created_at"])


def cmd_models_show(args: argparse.Namespace, client: Client) -> None:
    model = client.find_model(args.model)
    versions = client.list_versions(str(model.id))
    if args.output == "table":
        output.table([model.to_dict()], ["id", "name", "framework", "created_at"])
        print()
        output.table(
            [v.to_dict() for v in versions],
            ["version_tag", "id", "status", "predicted_cold_start_ms", "created_at"],
        )
        return
    output.dump({**model.to_dict(), "versions": [v.to_dict() for v in versions]})


def cmd_push(args: argparse.Namespace, client: Client) -> None:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if args.requirements and not Path(args.requirements).is_file():
        raise UsageError(f"{args.requirements} is not a file")
    model = client.find_model(args.model)
    output.step(f"uploading {path.name} to {model.name}")
    version = client.push(
        str(model.id), path, args.requirements, progress=output.ProgressBar("    ")
    )
    digest = version["artifact"]["sha256"]
    output.info(f"version {version.version_tag} ({version.id}) uploaded, sha256 {digest}")
    if args.no_wait:
        return
    output.step("building (validation in a sandbox, dependency plan)")
    version = client.wait_for_version(
        str(model.id),
        str(version.id),
        timeout=args.timeout,
        on_status=lambda s: output.info(f"status: {s}"),
    )
    if version["status"] == "Failed":
        raise Failed(
            f"build failed at stage {version.get('failure_stage')}: {version.get('failure_reason')}"
        )
    output.step(f"{version.version_tag} is Ready")
    output.info(f"signature: {json.dumps(version.get('signature'))}")
    output.info(f"dependency plan: {json.dumps(version.get('dependency_plan') or {})}")
    if version.get("predicted_cold_start_ms") is not None:
        output.info(f"predicted cold start: {version['predicted_cold_start_ms']:.0f} ms")
    output.info(f"deploy it with: kubeserve deploy {version.id}")


# -- deployments ---------------------------------------------------------------------------------


def _version_id(client: Client, ref: str) -> str:
    """A version id, or MODEL:TAG (e.g. iris:v2)."""
    if ":" in ref:
        model_ref, tag = ref.rsplit(":", 1)
        model = client.find_model(model_ref)
        return str(client.get_version(str(model.id), tag).id)
    return ref


def _settle(client: Client, deployment_id: str, timeout: float) -> Any:
    deployment = client.wait_for_deployment(
        deployment_id, timeout=timeout, on_status=lambda s: output.info(f"status: {s}")
    )
    if deployment["status"] == "Failed":
        raise Failed(f"deployment failed: {deployment.get('failure_reason')}")
    return deployment


def autoscaling(args: argparse.Namespace) -> dict[str, Any] | None:
    """The deployment's `autoscaling` settings from the deploy options, if any was given."""
    fields = {
        "min_replicas": args.min_replicas,
        "max_replicas": args.max_replicas,
        "target_concurrency": args.target_concurrency,
        "scale_to_zero_after_s": args.scale_to_zero_after,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    if given and getattr(args, "replicas", None) is not None:  # `deployments autoscale` has none
        raise UsageError("give either --replicas (a fixed count) or autoscaling options")
    return given or None


def cmd_deploy(args: argparse.Namespace, client: Client) -> None:
    scaling = autoscaling(args)
    deployment = client.deploy(
        _version_id(client, args.version),
        replicas=args.replicas,
        name=args.name,
        **({"autoscaling": scaling} if scaling else {}),
    )
    output.step(f"deployment {deployment.id} requested")
    if args.no_wait:
        return
    running = _settle(client, str(deployment.id), args.timeout)
    output.step("running")
    output.info(f"URL: {client.base_url}/api/v1/predict/{running['id']}")
    if running.get("cold_start"):
        output.info(f"cold start: {json.dumps(running['cold_start'])}")


DEPLOYMENT_COLUMNS = ["id", "name", "status", "ready", "version", "revision", "created_at"]


def _deployment_row(d: Any) -> dict[str, Any]:
    """kubectl's READY: ready/desired replicas."""
    return {
        **d.to_dict(),
        "ready": f"{d.replicas.ready}/{d.replicas.desired}",
        "version": d.version_tag,
    }


def cmd_deployments_list(args: argparse.Namespace, client: Client) -> None:
    deployments = client.list_deployments()
    if args.output == "json":
        output.dump([d.to_dict() for d in deployments])
        return
    output.table([_deployment_row(d) for d in deployments], DEPLOYMENT_COLUMNS)


def cmd_deployments_show(args: argparse.Namespace, client: Client) -> None:
    d = client.get_deployment(args.deployment)
    if args.output == "table":
        output.table([_deployment_row(d)], [*DEPLOYMENT_COLUMNS, "url"])
        return
    output.dump(d.to_dict())


def cmd_deployments_scale(args: argparse.Namespace, client: Client) -> None:
    client.scale(args.deployment, args.replicas)
    output.step(f"scaling to {args.replicas}")
    if not args.no_wait:
        _settle(client, args.deployment, args.timeout)
        output.step("running")


def cmd_deployments_autoscale(args: argparse.Namespace, client: Client) -> None:
    settings = autoscaling(args)
    if not settings:
        raise UsageError("give at least one of --min-replicas, --max-replicas, ...")
    client.autoscale(args.deployment, **settings)
    output.step(f"autoscaling {json.dumps(settings)}")
    if not args.no_wait:
        _settle(client, args.deployment, args.timeout)
        output.step("running")


def cmd_deployments_rollback(args: argparse.Namespace, client: Client) -> None:
    client.rollback(args.deployment, args.revision)
    output.step("rolling back")
    if not args.no_wait:
        deployment = _settle(client, args.deployment, args.timeout)
        output.step(f"running revision {deployment.get('revision')}")


def cmd_deployments_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete_deployment(args.deployment)
    output.step(f"deployment {args.deployment} deleted")


def cmd_logs(args: argparse.Namespace, client: Client) -> None:
    """Like `kubectl logs`: the lines as the replicas wrote them; `[replica N]` in front when
    the deployment runs several replicas and no `--replica` was given."""
    prefix = args.replica is None and client.get_deployment(args.deployment).replicas.desired > 1
    try:
        for entry in client.logs(
            args.deployment,
            follow=args.follow,
            replica=args.replica,
            since=args.since,
            tail=args.tail,
        ):
            print(f"[replica {entry.replica}] {entry.line}" if prefix else entry.line, flush=True)
    except KeyboardInterrupt:
        return


RESOURCES = ("replicas", "cpu", "memory_mib")
USAGE_COLUMNS = [
    *("id", "name", "status", "ready"),
    *("reserved_cpu", "reserved_memory_mib", "can_add_replicas"),
]


def cmd_usage(args: argparse.Namespace, client: Client) -> None:
    """What you use against your quota (`GET /api/v1/usage`): per resource, per deployment, and
    whether a new deployment or one more replica would fit."""
    usage = client.usage()
    if args.output == "json":
        output.dump(usage)
        return
    output.table(
        [
            {
                "resource": r,
                **{k: usage[k][r] for k in ("in_use", "running", "quota", "available")},
            }
            for r in RESOURCES
        ],
        ["resource", "in_use", "running", "quota", "available"],
    )
    print()
    output.table(
        [
            {
                **d,
                "ready": f"{d['replicas']['ready']}/{d['replicas']['desired']}",
                **{f"reserved_{r}": d["reserved"][r] for r in ("cpu", "memory_mib")},
            }
            for d in usage["deployments"]
        ],
        USAGE_COLUMNS,
    )
    print()
    for key in ("new_deployment", "scale_up"):  # each message says what fits and why
        print(usage[key]["message"])


def cmd_predict(args: argparse.Namespace, client: Client) -> None:
    if args.file:
        try:
            raw = Path(args.file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read the request file: {exc}") from exc
    elif args.json is not None and args.json != "-":
        raw = args.json
    else:
        raw = sys.stdin.read()
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the request is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UsageError('the request must be a JSON object, e.g. {"instances": [[1, 2, 3, 4]]}')
    output.dump(client.predict(args.deployment, payload))


# -- API keys ------------------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace, client: Client) -> None:
    limit = None
    if args.rate_limit is not None:
        limit = {"requests_per_second": args.rate_limit}
        if args.burst is not None:
            limit["burst"] = args.burst
    elif args.burst is not None:
        raise UsageError("--burst needs --rate-limit")
    key = client.create_api_key(
        args.name, args.deployment or None, args.expires_in_days, rate_limit=limit
    )
    output.step(f"API key {key.name} ({key.id}) created. The secret is shown only once:")
    print(key.key)


def cmd_keys_list(args: argparse.Namespace, client: Client) -> None:
    keys = [k.to_dict() for k in client.list_api_keys()]
    columns = ["id", "name", "prefix", "deployment_ids", "expires_at", "last_used_at", "revoked_at"]
    output.render(keys, columns, args.output)


def cmd_keys_revoke(args: argparse.Namespace, client: Client) -> None:
    client.revoke_api_key(args.key_id)
    output.step(f"API key {args.key_id} revoked")
