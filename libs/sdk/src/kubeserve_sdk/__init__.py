"""Python client for the KubeServe public API, synchronous (`Client`) and asyncio
(`AsyncClient`) with the same methods and typed answers (`kubeserve_sdk.models`, generated from
the gateway's OpenAPI document).

from kubeserve_sdk import Client
client = Client()  # KUBESERVE_URL + KUBESERVE_API_KEY, or what `kubeserve login` saved
model = client.create_model("iris", framework="sklearn")
version = client.wait_for_version(model.id, client.push(model.id, "model.joblib").id)
deployment = client.wait_for_deployment(client.deploy(version.id).id)
client.predict(deployment.id, numpy_rows, as_numpy=True)  # -> array([0, 2])
"""

from kubeserve_sdk._calls import LogEntry
from kubeserve_sdk._transport import APIError, Credentials, RetryPolicy, TimeoutExpired
from kubeserve_sdk.aio import AsyncClient
from kubeserve_sdk.client import Client

__all__ = [
    "APIError",
    "AsyncClient",
    "Client",
    "Credentials",
    "LogEntry",
    "RetryPolicy",
    "TimeoutExpired",
]
