"""Regenerate `libs/sdk/src/kubeserve_sdk/models.py` (the SDK's typed response models) from the
gateway's public OpenAPI document, so the SDK never holds a hand-made copy of the services'
schemas. Usage: `make sdk-models`, which builds the document in-process (each service's app,
merged by the gateway's own code; no platform, database or broker needed). Or from a running
platform's document, or a saved one:

    uv run python scripts/generate_sdk_models.py http://127.0.0.1:8080/api/v1/openapi.json

`tests/e2e/test_openapi_clients.py` fails when the committed file differs from what the live
document generates (then run `make sdk-models` and commit)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "libs/sdk/src/kubeserve_sdk/models.py"
HEADER = (
    '"""Typed models of the public API, generated from the gateway\'s OpenAPI document by\n'
    "scripts/generate_sdk_models.py (datamodel-code-generator): do not edit by hand.\n"
    'Every model also reads like the JSON object it came from: `model["id"]`."""\n'
    "# ruff: noqa\n"
    "# mypy: disable-error-code=\"misc\""
)


def generate(document: dict[str, object]) -> str:
    """The models module for `document` (only its component schemas matter)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "openapi.json"
        # Only the schemas: paths and servers must not change the output.
        schemas: dict[str, object] = dict(document["components"]["schemas"])  # type: ignore[index]
        slim = {
            "openapi": document.get("openapi", "3.1.0"),
            "info": {"title": "KubeServe API", "version": "1"},
            "paths": {},
            "components": {"schemas": dict(sorted(schemas.items()))},
        }
        source.write_text(json.dumps(slim, indent=1))
        out = Path(tmp) / "models.py"
        subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
            [
                sys.executable, "-m", "datamodel_code_generator",
                "--input", str(source), "--input-file-type", "openapi",
                "--output", str(out),
                "--output-model-type", "pydantic_v2.BaseModel",
                "--base-class", "kubeserve_sdk._base.ApiModel",
                "--use-standard-collections", "--use-union-operator", "--use-annotated",
                "--field-constraints", "--target-python-version", "3.11",
                "--disable-timestamp", "--use-schema-description",
                "--custom-file-header", HEADER,
                "--formatters", "ruff-format",
            ],
            check=True,
        )
        return out.read_text()


SERVICES = ("auth", "registry", "builder", "deployer")  # the gateway's upstreams, by its names


def build_document() -> dict[str, object]:
    """The public document as the gateway serves it, from the services' apps in this process:
    each app's `openapi()` (built without touching a database), merged by `OpenApiService`."""
    saved = {key: os.environ.get(key) for key in ("KUBESERVE_HOME", "KUBESERVE_DEV_MODE")}
    with tempfile.TemporaryDirectory() as home:
        # Dev mode under a throwaway home: the apps need a secret and a signing key to build,
        # and none of the user's is read or written.
        os.environ.update(KUBESERVE_HOME=home, KUBESERVE_DEV_MODE="true")
        try:
            return _merged_in_process()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _merged_in_process() -> dict[str, object]:
    from kubeserve_gateway.domain.routes import RouteTable, default_routes
    from kubeserve_gateway.services.openapi import OpenApiService

    docs = {}
    for name in SERVICES:
        create_app = importlib.import_module(f"kubeserve_{name}.main").create_app
        docs[name] = create_app(consume=False).openapi()

    async def fetch(url: str) -> object:
        return docs[url.split("/")[2]]

    service = OpenApiService(
        routes=RouteTable(default_routes()),
        upstreams={name: f"http://{name}" for name in SERVICES},
        fetch=fetch,
        ttl=0,
    )
    return asyncio.run(service.document())


def main(argv: list[str]) -> int:
    where = argv[1] if len(argv) > 1 else None
    if where in (None, "--document"):
        document = build_document()
        if where == "--document":  # print it instead (tests compare it with a live one)
            print(json.dumps(document, sort_keys=True))
            return 0
    elif where.startswith("http"):
        with urllib.request.urlopen(where, timeout=30) as response:  # noqa: S310
            document = json.load(response)
    else:
        document = json.loads(Path(where).read_text())
    if document.get("x-kubeserve-unavailable"):
        print(f"services missing from the document: {document['x-kubeserve-unavailable']}")
        return 1
    TARGET.write_text(generate(document))
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
