"""`kubeserve`: run the platform locally (`up`, `demo`) and use it (register, push, deploy,
predict, ...) over the public HTTP API through `kubeserve_sdk`.

Exit codes: 0 success, 1 the API refused or failed, 2 usage error, 3 a build or deployment
ended Failed, 4 timed out waiting.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from kubeserve_sdk import APIError, Client, Credentials, TimeoutExpired

from kubeserve_cli import config, output

EXIT_API, EXIT_USAGE, EXIT_FAILED, EXIT_TIMEOUT = 1, 2, 3, 4


class UsageError(Exception):
    pass


class Failed(Exception):
    pass


# -- client from the saved credentials ---------------------------------------------------------


def make_client(args: argparse.Namespace) -> Client:
    saved = config.load()
    url = args.url or os.environ.get("KUBESERVE_URL") or saved.get("url") or config.DEFAULT_URL
    api_key = os.environ.get("KUBESERVE_API_KEY")

    def persist(creds: Credentials) -> None:
        data = config.load()
        data.update(url=url, access_token=creds.access_token, refresh_token=creds.refresh_token)
        config.save(data)

    creds = Credentials(
        access_token=None if api_key else saved.get("access_token"),
        refresh_token=None if api_key else saved.get("refresh_token"),
        api_key=api_key,
        on_refresh=persist,
    )
    return Client(url, creds)


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
    output.step(f"registered {user['email']}")
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
    output.dump(client.me())


# -- models --------------------------------------------------------------------------------------


def cmd_models_create(args: argparse.Namespace, client: Client) -> None:
    model = client.create_model(args.name, framework=args.framework, description=args.description)
    output.step(f"created model {model['name']} ({model['id']})")


def cmd_models_list(args: argparse.Namespace, client: Client) -> None:
    rows = [
        {
            **m,
            "latest": (m.get("latest_version") or {}).get("version_tag"),
            "status": (m.get("latest_version") or {}).get("status"),
        }
        for m in client.iter_models()
    ]
    output.table(rows, ["id", "name", "framework", "latest", "status", "created_at"])


def cmd_models_show(args: argparse.Namespace, client: Client) -> None:
    model = client.find_model(args.model)
    output.dump({**model, "versions": client.list_versions(model["id"])})


def cmd_push(args: argparse.Namespace, client: Client) -> None:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if args.requirements and not Path(args.requirements).is_file():
        raise UsageError(f"{args.requirements} is not a file")
    model = client.find_model(args.model)
    output.step(f"uploading {path.name} to {model['name']}")
    version = client.push(model["id"], path, args.requirements, progress=output.ProgressBar("    "))
    digest = version["artifact"]["sha256"]
    output.info(f"version {version['version_tag']} ({version['id']}) uploaded, sha256 {digest}")
    if args.no_wait:
        return
    output.step("building (validation in a sandbox, dependency plan)")
    version = client.wait_for_version(
        model["id"],
        version["id"],
        timeout=args.timeout,
        on_status=lambda s: output.info(f"status: {s}"),
    )
    if version["status"] == "Failed":
        raise Failed(
            f"build failed at stage {version.get('failure_stage')}: {version.get('failure_reason')}"
        )
    plan = version.get("dependency_plan") or {}
    output.step(f"{version['version_tag']} is Ready")
    output.info(f"signature: {json.dumps(version.get('signature'))}")
    output.info(f"dependency plan: {json.dumps(plan)}")
    if version.get("predicted_cold_start_ms") is not None:
        output.info(f"predicted cold start: {version['predicted_cold_start_ms']:.0f} ms")
    output.info(f"deploy it with: kubeserve deploy {version['id']}")


# -- deployments ---------------------------------------------------------------------------------


def _version_id(client: Client, ref: str) -> str:
    """A version id, or MODEL:TAG (e.g. iris:v2)."""
    if ":" in ref:
        model_ref, tag = ref.rsplit(":", 1)
        model = client.find_model(model_ref)
        return str(client.get_version(model["id"], tag)["id"])
    return ref


def _settle(client: Client, deployment: dict[str, Any], timeout: float) -> dict[str, Any]:
    deployment = client.wait_for_deployment(
        deployment["id"], timeout=timeout, on_status=lambda s: output.info(f"status: {s}")
    )
    if deployment["status"] == "Failed":
        raise Failed(f"deployment failed: {deployment.get('failure_reason')}")
    return deployment


def cmd_deploy(args: argparse.Namespace, client: Client) -> None:
    deployment = client.deploy(
        _version_id(client, args.version), replicas=args.replicas, name=args.name
    )
    output.step(f"deployment {deployment['id']} requested")
    if args.no_wait:
        return
    deployment = _settle(client, deployment, args.timeout)
    output.step("running")
    output.info(f"URL: {client.base_url}/api/v1/predict/{deployment['id']}")
    if deployment.get("cold_start"):
        output.info(f"cold start: {json.dumps(deployment['cold_start'])}")


def cmd_deployments_list(args: argparse.Namespace, client: Client) -> None:
    output.table(
        client.list_deployments(),
        ["id", "name", "status", "replicas", "ready_replicas", "revision", "created_at"],
    )


def cmd_deployments_show(args: argparse.Namespace, client: Client) -> None:
    output.dump(client.get_deployment(args.deployment))


def cmd_deployments_scale(args: argparse.Namespace, client: Client) -> None:
    client.scale(args.deployment, args.replicas)
    output.step(f"scaling to {args.replicas}")
    if not args.no_wait:
        _settle(client, {"id": args.deployment}, args.timeout)
        output.step("running")


def cmd_deployments_rollback(args: argparse.Namespace, client: Client) -> None:
    client.rollback(args.deployment, args.revision)
    output.step("rolling back")
    if not args.no_wait:
        deployment = _settle(client, {"id": args.deployment}, args.timeout)
        output.step(f"running revision {deployment.get('revision')}")


def cmd_deployments_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete_deployment(args.deployment)
    output.step(f"deployment {args.deployment} deleted")


def cmd_predict(args: argparse.Namespace, client: Client) -> None:
    if args.file:
        raw = Path(args.file).read_text()
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
    key = client.create_api_key(args.name, args.deployment or None, args.expires_in_days)
    output.step(f"API key {key['name']} ({key['id']}) created. The secret is shown only once:")
    print(key["key"])


def cmd_keys_list(args: argparse.Namespace, client: Client) -> None:
    output.table(
        client.list_api_keys(),
        ["id", "name", "prefix", "deployment_ids", "expires_at", "last_used_at", "revoked_at"],
    )


def cmd_keys_revoke(args: argparse.Namespace, client: Client) -> None:
    client.revoke_api_key(args.key_id)
    output.step(f"API key {args.key_id} revoked")


# -- local platform ------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from kubeserve_common.logging import configure_logging

    from kubeserve_cli import embedded

    configure_logging(args.log_level, json_logs=args.json_logs)
    embedded.apply_sandbox_opt_out(args.insecure_no_sandbox)
    home = Path(args.home).expanduser()

    def ready(url: str) -> None:
        print(
            f"\nKubeServe is running (embedded mode)\n"
            f"  dashboard: {url}/\n"
            f"  API:       {url}/api/v1\n"
            f"  API docs:  {url}/docs\n"
            f"  health:    {url}/readyz\n"
            f"  data:      {home}\n"
            "Try it:   uv run kubeserve demo   (in another terminal)\n"
            "Press Ctrl+C to stop.\n",
            flush=True,
        )

    import asyncio

    try:
        asyncio.run(embedded.run(home, host=args.host, port=args.port, on_ready=ready))
    except OSError as exc:
        output.error(f"kubeserve up: {exc}")
        return EXIT_API
    return 0


def cmd_demo(args: argparse.Namespace, client: Client) -> None:
    from kubeserve_cli import demo

    demo.run(client, timeout=args.timeout)


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from kubeserve_common.security.sandbox_opt_out import OPT_OUT_FLAG, OPT_OUT_HELP
    from kubeserve_common.settings import DEFAULT_HOME

    parser = argparse.ArgumentParser(
        prog="kubeserve", description="KubeServe - upload a model, get a prediction URL."
    )
    parser.add_argument(
        "--url", help=f"gateway URL (env KUBESERVE_URL; default {config.DEFAULT_URL})"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the whole platform in this process (embedded mode)")
    up.add_argument("--host", default="127.0.0.1", help="interface of the public gateway")
    up.add_argument("--port", type=int, default=int(os.environ.get("KUBESERVE_PORT", "8080")))
    up.add_argument(
        "--home",
        default=os.environ.get("KUBESERVE_HOME", str(DEFAULT_HOME)),
        help="where the embedded mode keeps its databases and artifacts",
    )
    up.add_argument("--log-level", default="WARNING")
    up.add_argument("--json-logs", action="store_true", help="structured JSON logs")
    up.add_argument(OPT_OUT_FLAG, action="store_true", help=OPT_OUT_HELP)
    up.set_defaults(local=cmd_up)

    demo = sub.add_parser("demo", help="register a demo user, push an iris model, deploy, predict")
    demo.add_argument("--timeout", type=float, default=300)
    demo.set_defaults(func=cmd_demo)

    for name, func, helptext in (
        ("register", cmd_register, "create an account and log in"),
        ("login", cmd_login, "log in and save the tokens"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("email")
        p.add_argument("--password", help="(or env KUBESERVE_PASSWORD, or a prompt)")
        p.set_defaults(func=func)
    sub.add_parser("logout", help="revoke the saved session").set_defaults(func=cmd_logout)
    sub.add_parser("whoami", help="show the logged-in user").set_defaults(func=cmd_whoami)

    models = sub.add_parser("models", help="create, list and show models").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND"
    )
    p = models.add_parser("create", help="create a model")
    p.add_argument("name", help="DNS-safe name, e.g. iris-classifier")
    p.add_argument(
        "--framework",
        default="sklearn",
        choices=["sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "custom"],
    )
    p.add_argument("--description", default="")
    p.set_defaults(func=cmd_models_create)
    models.add_parser("list", help="your models").set_defaults(func=cmd_models_list)
    p = models.add_parser("show", help="a model and its versions")
    p.add_argument("model", help="name or id")
    p.set_defaults(func=cmd_models_show)

    p = sub.add_parser("push", help="upload a model version, then wait for its build")
    p.add_argument("model", help="model name or id")
    p.add_argument("file", help="the model file, e.g. model.joblib")
    p.add_argument("-r", "--requirements", help="a requirements.txt")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("deploy", help="deploy a Ready version and wait until it runs")
    p.add_argument("version", help="version id, or MODEL:TAG such as iris:v1")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--name")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=300)
    p.set_defaults(func=cmd_deploy)

    deps = sub.add_parser(
        "deployments", help="list, show, scale, roll back, delete"
    ).add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    deps.add_parser("list", help="your deployments").set_defaults(func=cmd_deployments_list)
    for name, func, helptext in (
        ("show", cmd_deployments_show, "one deployment"),
        ("delete", cmd_deployments_delete, "delete a deployment"),
    ):
        p = deps.add_parser(name, help=helptext)
        p.add_argument("deployment")
        p.set_defaults(func=func)
    p = deps.add_parser("scale", help="change the number of replicas")
    p.add_argument("deployment")
    p.add_argument("replicas", type=int)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=300)
    p.set_defaults(func=cmd_deployments_scale)
    p = deps.add_parser("rollback", help="roll back to the previous (or a given) revision")
    p.add_argument("deployment")
    p.add_argument("--revision", type=int)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=300)
    p.set_defaults(func=cmd_deployments_rollback)

    p = sub.add_parser("predict", help="call a deployment with a JSON request")
    p.add_argument("deployment")
    p.add_argument(
        "json",
        nargs="?",
        help="e.g. '{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}'; - or none reads stdin",
    )
    p.add_argument("-f", "--file", help="read the JSON request from a file")
    p.set_defaults(func=cmd_predict)

    keys = sub.add_parser("api-keys", help="create, list and revoke API keys").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND"
    )
    p = keys.add_parser("create", help="create a key (its secret is shown once)")
    p.add_argument("name")
    p.add_argument(
        "--deployment",
        action="append",
        default=[],
        help="limit the key to this deployment (repeatable)",
    )
    p.add_argument("--expires-in-days", type=int)
    p.set_defaults(func=cmd_keys_create)
    keys.add_parser("list", help="your keys (never the secrets)").set_defaults(func=cmd_keys_list)
    p = keys.add_parser("revoke", help="revoke a key")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_keys_revoke)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if hasattr(args, "local"):
        sys.exit(args.local(args))
    try:
        with make_client(args) as client:
            args.func(args, client)
    except UsageError as exc:
        output.error(str(exc))
        sys.exit(EXIT_USAGE)
    except APIError as exc:
        hint = " - run `kubeserve login` first" if exc.status == 401 else ""
        output.error(f"{exc.message} (HTTP {exc.status}, {exc.code}){hint}")
        sys.exit(EXIT_API)
    except Failed as exc:
        output.error(str(exc))
        sys.exit(EXIT_FAILED)
    except TimeoutExpired as exc:
        output.error(f"gave up waiting: {exc}")
        sys.exit(EXIT_TIMEOUT)
    except KeyboardInterrupt:
        sys.exit(130)
