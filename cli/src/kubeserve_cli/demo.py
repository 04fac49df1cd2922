"""`kubeserve demo`: the whole journey against a running platform, printing each step -
register a throwaway user, train an iris classifier, push it, wait for the build, deploy it,
predict, and leave it running for you to try."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

from kubeserve_sdk import Client

from kubeserve_cli import output
from kubeserve_cli.commands import Failed

IRIS_SAMPLES = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


def train_iris(directory: Path) -> Path:
    # Training happens in the CLI (the client side); the platform never unpickles in its
    # control plane - only the sandboxed builder child and the runtime load the file.
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    iris = load_iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(iris.data, iris.target)
    path = directory / "model.joblib"
    joblib.dump(model, path)
    return path


def run(client: Client, timeout: float = 300) -> None:
    email = f"demo-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(18)
    output.step(f"registering {email}")
    client.register(email, password)
    client.login(email, password)

    with tempfile.TemporaryDirectory() as tmp:
        output.step("training an iris classifier (StandardScaler + LogisticRegression)")
        path = train_iris(Path(tmp))
        model = client.create_model(f"iris-{secrets.token_hex(3)}", framework="sklearn")
        output.step(f"pushing {path.name} to model {model['name']}")
        version = client.push(model["id"], path)
    output.info(f"version {version['version_tag']} uploaded")
    output.step("waiting for the build")
    version = client.wait_for_version(
        model["id"], version["id"], timeout=timeout, on_status=lambda s: output.info(f"status: {s}")
    )
    if version["status"] != "Ready":
        raise Failed(
            f"build failed: {version.get('failure_stage')}: {version.get('failure_reason')}"
        )
    output.info(f"signature: {json.dumps(version.get('signature'))}")
    output.step("deploying")
    deployment = client.deploy(version["id"])
    deployment = client.wait_for_deployment(
        deployment["id"], timeout=timeout, on_status=lambda s: output.info(f"status: {s}")
    )
    if deployment["status"] != "Running":
        raise Failed(f"deployment failed: {deployment.get('failure_reason')}")
    url = f"{client.base_url}/api/v1/predict/{deployment['id']}"
    output.info(f"URL: {url}")
    output.step(f"predicting {IRIS_SAMPLES}")
    result = client.predict(deployment["id"], {"instances": IRIS_SAMPLES})
    output.info(f"predictions: {result.get('predictions')}")
    output.step("done - the deployment keeps running. Call it yourself:")
    output.info(
        f"curl -s -X POST {url} -H 'Authorization: Bearer <token or API key>' "
        f"-H 'Content-Type: application/json' -d '{{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}}'"
    )
    output.info(f"demo user: {email} / {password} (log in to the dashboard at {client.base_url}/)")
