"""`kubeserve`: run the platform locally (`up`, `demo`) and use it (register, push, deploy,
predict, logs, ...) over the public HTTP API through `kubeserve_sdk`.

Exit codes: 0 success, 1 the API refused or failed (or a file could not be read or written),
2 usage error, 3 a build or deployment ended Failed, 4 timed out waiting, 141 the output pipe
was closed (`| head`).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from pathlib import Path

from kubeserve_sdk import APIError, Client, TimeoutExpired

from kubeserve_cli import completion, config, output
from kubeserve_cli.commands import (
    Failed,
    UsageError,
    cmd_deploy,
    cmd_deployments_autoscale,
    cmd_deployments_delete,
    cmd_deployments_list,
    cmd_deployments_rollback,
    cmd_deployments_scale,
    cmd_deployments_show,
    cmd_keys_create,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_login,
    cmd_logout,
    cmd_logs,
    cmd_models_create,
    cmd_models_list,
    cmd_models_show,
    cmd_predict,
    cmd_push,
    cmd_register,
    cmd_usage,
    cmd_whoami,
)

EXIT_API, EXIT_USAGE, EXIT_FAILED, EXIT_TIMEOUT = 1, 2, 3, 4
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


def make_client(args: argparse.Namespace) -> Client:
    """`--url`, else KUBESERVE_URL, else the saved URL; KUBESERVE_API_KEY, else the saved
    tokens (refreshed ones are saved back) - the SDK's own resolution."""
    client = Client(args.url)
    if not client.credentials.api_key:  # so that `login` and `register` save the tokens too
        client.credentials.on_refresh = config.token_saver(client.base_url)
    return client


def version() -> str:
    try:
        return metadata.version("kubeserve-cli")
    except metadata.PackageNotFoundError:
        return "unknown"


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

    from uvicorn.loops.auto import auto_loop_factory

    try:
        # The event loop the distributed services get from uvicorn: uvloop where installed.
        with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
            runner.run(embedded.run(home, host=args.host, port=args.port, on_ready=ready))
    except OSError as exc:
        output.error(f"kubeserve up: {exc}")
        return EXIT_API
    return 0


def cmd_demo(args: argparse.Namespace, client: Client) -> None:
    from kubeserve_cli import demo

    demo.run(client, timeout=args.timeout)


# -- parser --------------------------------------------------------------------------------------


def _waits(parser: argparse.ArgumentParser, *, timeout: float = 300) -> None:
    """The `--no-wait` and `--timeout SECONDS` options of a command that waits for the platform."""
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--timeout", type=float, default=timeout)


def _reads(default: str) -> argparse.ArgumentParser:
    """The `-o json|table` option of a read command (a fresh one each: argparse shares a
    parent's actions, so one parser's default would leak into the others)."""
    reads = argparse.ArgumentParser(add_help=False)
    reads.add_argument(
        "-o",
        "--output",
        choices=["table", "json"],
        default=default,
        help=f"output format (default {default})",
    )
    return reads


def _autoscaling_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-replicas", type=int, help="autoscaling: at least (0: scale to zero)")
    p.add_argument("--max-replicas", type=int, help="autoscaling: at most (default 3)")
    p.add_argument(
        "--target-concurrency", type=float, help="autoscaling: requests in flight per replica"
    )
    p.add_argument(
        "--scale-to-zero-after",
        type=int,
        metavar="SECONDS",
        help="autoscaling: idle seconds before 0 replicas (with --min-replicas 0)",
    )


def build_parser() -> argparse.ArgumentParser:
    from kubeserve_common.security.sandbox_opt_out import OPT_OUT_FLAG, OPT_OUT_HELP
    from kubeserve_common.settings import DEFAULT_HOME

    parser = argparse.ArgumentParser(
        prog="kubeserve", description="KubeServe - upload a model, get a prediction URL."
    )
    parser.add_argument(
        "--url", help=f"gateway URL (env KUBESERVE_URL; default {config.DEFAULT_URL})"
    )
    parser.add_argument("--version", action="version", version=f"kubeserve {version()}")
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
    sub.add_parser("whoami", help="show the logged-in user", parents=[_reads("json")]).set_defaults(
        func=cmd_whoami
    )

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
    models.add_parser("list", help="your models", parents=[_reads("table")]).set_defaults(
        func=cmd_models_list
    )
    p = models.add_parser("show", help="a model and its versions", parents=[_reads("json")])
    p.add_argument("model", help="name or id")
    p.set_defaults(func=cmd_models_show)

    p = sub.add_parser("push", help="upload a model version, then wait for its build")
    p.add_argument("model", help="model name or id")
    p.add_argument("file", help="the model file, e.g. model.joblib")
    p.add_argument("-r", "--requirements", help="a requirements.txt")
    _waits(p, timeout=600)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("deploy", help="deploy a Ready version and wait until it runs")
    p.add_argument("version", help="version id, or MODEL:TAG such as iris:v1")
    p.add_argument("--replicas", type=int, help="a fixed replica count (default 1)")
    p.add_argument("--name")
    _autoscaling_options(p)
    _waits(p)
    p.set_defaults(func=cmd_deploy)

    deps = sub.add_parser(
        "deployments", help="list, show, scale, roll back, delete"
    ).add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    deps.add_parser("list", help="your deployments", parents=[_reads("table")]).set_defaults(
        func=cmd_deployments_list
    )
    p = deps.add_parser("show", help="one deployment", parents=[_reads("json")])
    p.add_argument("deployment")
    p.set_defaults(func=cmd_deployments_show)
    p = deps.add_parser("delete", help="delete a deployment")
    p.add_argument("deployment")
    p.set_defaults(func=cmd_deployments_delete)
    p = deps.add_parser("scale", help="change the number of replicas")
    p.add_argument("deployment")
    p.add_argument("replicas", type=int)
    _waits(p)
    p.set_defaults(func=cmd_deployments_scale)
    p = deps.add_parser("autoscale", help="turn autoscaling on or change it (scale: off)")
    p.add_argument("deployment")
    _autoscaling_options(p)
    _waits(p)
    p.set_defaults(func=cmd_deployments_autoscale)
    p = deps.add_parser("rollback", help="roll back to the previous (or a given) revision")
    p.add_argument("deployment")
    p.add_argument("--revision", type=int)
    _waits(p)
    p.set_defaults(func=cmd_deployments_rollback)

    p = sub.add_parser("logs", help="print (or follow) the replicas' log lines")
    p.add_argument("deployment")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("--replica", type=int, help="only this replica (0, 1, ...)")
    p.add_argument("--since", help="only lines since a duration (10m, 1h30m) or an instant")
    p.add_argument("--tail", type=int, help="only the last N lines of each replica")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser(
        "usage", help="replicas, CPU and memory against your quota", parents=[_reads("table")]
    )
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(local=lambda a: completion.print_script(build_parser(), a.shell))

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
    p.add_argument(
        "--rate-limit", type=float, metavar="RPS", help="the key's own limit, requests/second"
    )
    p.add_argument("--burst", type=int, help="requests above the rate it may burst to")
    p.set_defaults(func=cmd_keys_create)
    keys.add_parser(
        "list", help="your keys (never the secrets)", parents=[_reads("table")]
    ).set_defaults(func=cmd_keys_list)
    p = keys.add_parser("revoke", help="revoke a key")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_keys_revoke)
    return parser


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
    except BrokenPipeError:
        # The reader went away (`kubeserve logs ID | head`): stop quietly like other tools,
        # with stdout on /dev/null so the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_PIPE
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    """The exit code of one command; errors become one `error:` line on stderr."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "local"):
        return int(args.local(args))
    try:
        with make_client(args) as client:
            args.func(args, client)
    except UsageError as exc:
        output.error(str(exc))
        return EXIT_USAGE
    except APIError as exc:
        hint = " - run `kubeserve login` first" if exc.status == 401 else ""
        output.error(f"{exc.message} (HTTP {exc.status}, {exc.code}){hint}")
        return EXIT_API
    except Failed as exc:
        output.error(str(exc))
        return EXIT_FAILED
    except TimeoutExpired as exc:
        output.error(f"gave up waiting: {exc}")
        return EXIT_TIMEOUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file the command reads or writes (model, request, config)
        output.error(str(exc))
        return EXIT_API
    return 0
