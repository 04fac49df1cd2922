"""Regenerate `libs/sdk/src/kubeserve_sdk/models.py` (the SDK's typed response models) from the
gateway's public OpenAPI document, so the SDK never holds a hand-made copy of the services'
schemas. Usage, with a platform running (`kubeserve up`):

    uv run python scripts/generate_sdk_models.py http://127.0.0.1:8080/api/v1/openapi.json

`tests/e2e/test_openapi_clients.py` fails when the committed file differs from what the live
document generates (then run this and commit)."""

from __future__ import annotations

import json
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


def main(argv: list[str]) -> int:
    where = argv[1] if len(argv) > 1 else "http://127.0.0.1:8080/api/v1/openapi.json"
    if where.startswith("http"):
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
