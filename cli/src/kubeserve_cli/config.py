"""Where the CLI keeps the gateway URL and tokens: the SDK's `kubeserve_sdk.config` (one file,
`$XDG_CONFIG_HOME/kubeserve/credentials.json`, read by both)."""

from kubeserve_sdk.config import (
    DEFAULT_URL,
    clear,
    config_dir,
    credentials_path,
    load,
    save,
    token_saver,
)

__all__ = [
    "DEFAULT_URL",
    "clear",
    "config_dir",
    "credentials_path",
    "load",
    "save",
    "token_saver",
]
