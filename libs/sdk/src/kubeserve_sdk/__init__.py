"""Python client for the KubeServe public API.

from kubeserve_sdk import Client
client = Client("http://127.0.0.1:8080")
client.login("ada@example.com", "a long passphrase")
model = client.create_model("iris", framework="sklearn")
version = client.wait_for_version(model["id"], client.push(model["id"], "model.joblib")["id"])
deployment = client.wait_for_deployment(client.deploy(version["id"])["id"])
client.predict(deployment["id"], {"instances": [[5.1, 3.5, 1.4, 0.2]]})
"""

from kubeserve_sdk.client import APIError, Client, Credentials, TimeoutExpired

__all__ = ["APIError", "Client", "Credentials", "TimeoutExpired"]
