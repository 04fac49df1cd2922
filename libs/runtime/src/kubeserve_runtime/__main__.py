"""Command line entry: `python -m kubeserve_runtime --model PATH_OR_S3_URI --name NAME`."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python -m kubeserve_runtime",
        description="Serve one model over the Open Inference Protocol V2 and /predict.",
    )
    p.add_argument(
        "--model",
        default=env("KUBESERVE_MODEL_URI") or env("MODEL_URI"),
        help="model file, artifact directory or s3://bucket/key (env KUBESERVE_MODEL_URI)",
    )
    p.add_argument(
        "--name", default=env("KUBESERVE_MODEL_NAME"), help="model name (KUBESERVE_MODEL_NAME)"
    )
    p.add_argument(
        "--version",
        default=env("KUBESERVE_MODEL_VERSION", "v1"),
        help="model version (KUBESERVE_MODEL_VERSION, default v1)",
    )
    p.add_argument("--host", default=env("KUBESERVE_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("KUBESERVE_PORT", "8080")))
    p.add_argument(
        "--deployment-id",
        default=None,
        help="label for metrics (KUBESERVE_DEPLOYMENT_ID, default: the model name)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="rows merged into one model call; 1 switches batching off "
        "(KUBESERVE_MAX_BATCH_SIZE, default 32)",
    )
    p.add_argument(
        "--max-batch-wait-ms",
        type=float,
        default=None,
        help="how long a batch may wait to grow (KUBESERVE_MAX_BATCH_WAIT_MS, default 0)",
    )
    p.add_argument(
        "--model-threads",
        type=int,
        default=None,
        help="threads running model calls (KUBESERVE_MODEL_THREADS)",
    )
    p.add_argument("--log-level", default=env("KUBESERVE_LOG_LEVEL", "info"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.model or not args.name:
        _parser().error("--model and --name are required (or KUBESERVE_MODEL_URI/_NAME)")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    from kubeserve_runtime.app import create_app
    from kubeserve_runtime.server import serve

    app = create_app(
        args.model,
        args.name,
        args.version,
        deployment_id=args.deployment_id,
        max_batch_size=args.max_batch_size,
        max_batch_wait_ms=args.max_batch_wait_ms,
        model_threads=args.model_threads,
    )
    serve(app, host=args.host, port=args.port, log_level=args.log_level, graceful_seconds=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
