"""Where the CLI keeps the gateway URL and tokens (`$XDG_CONFIG_HOME/kubeserve/credentials.json`,
default `~/.config/kubeserve/`, mode 0600); the SDK reads the same file as its last resort."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kubeserve"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load() -> dict[str, Any]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any]) -> Path:
    """Write atomically with 0600 from the first byte (tokens are secrets)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def clear() -> None:
    credentials_path().unlink(missing_ok=True)


def token_saver(url: str) -> Callable[[Any], None]:
    """A `Credentials.on_refresh` hook that saves new tokens (a login, a refresh) for `url`."""

    def save_tokens(creds: Any) -> None:
        data = load()
        data.update(url=url, access_token=creds.access_token, refresh_token=creds.refresh_token)
        save(data)

    return save_tokens
