"""The one switch that runs tenant code without the sandbox, for every part of the platform
that runs it (the local backend's replicas, the builder's trial): `KUBESERVE_INSECURE_NO_SANDBOX`
(`kubeserve up --insecure-no-sandbox`), and the one warning it prints per process."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

OPT_OUT_ENV = "KUBESERVE_INSECURE_NO_SANDBOX"
OPT_OUT_FLAG = "--insecure-no-sandbox"
OPT_OUT_HELP = (
    f"run uploaded models UNCONFINED, as your own user (single-user laptop only; {OPT_OUT_ENV}=1)"
)
WARNING = (
    f"WARNING: {OPT_OUT_ENV}=1 ({OPT_OUT_FLAG}): uploaded models run WITHOUT a sandbox - as "
    "this platform's own user, with its view of every file (databases, signing keys, other "
    "tenants' artifacts) and of the network. Use it only on a single-user machine, with "
    "models you trust."
)
_TRUE = {"1", "true", "yes", "on"}
_warned = False


def opted_out(env: Mapping[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(OPT_OUT_ENV, "")
    return value.strip().lower() in _TRUE


def warn_insecure_once(logger: logging.Logger | None = None) -> None:
    """Print the warning, once per process whoever asks (several services share a process in
    the embedded mode)."""
    global _warned
    if _warned:
        return
    _warned = True
    if logger is not None:
        logger.warning(WARNING)
    else:
        print(WARNING, file=sys.stderr, flush=True)
