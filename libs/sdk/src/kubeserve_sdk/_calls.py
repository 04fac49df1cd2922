"""Every API call of the SDK, once: path, body and typed answer. `Client` and `AsyncClient` run
the same `Call`s, so the two cannot drift apart."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubeserve_sdk import models as m
from kubeserve_sdk._transport import Call, items
from kubeserve_sdk.arrays import infer_payload, simple_payload


def _one(model: type[Any]) -> Any:
    return lambda body: model.model_validate(body)


def _many(model: type[Any]) -> Any:
    return lambda body: [model.model_validate(x) for x in items(body)]


def _none(body: Any) -> None:
    return None


def _raw(body: Any) -> Any:
    return body


def register(email: str, password: str) -> Call[m.UserRead]:
    body = {"email": email, "password": password}
    return Call("POST", "/auth/register", _one(m.UserRead), {"json": body}, auth=False)


def login(email: str, password: str) -> Call[m.TokenResponse]:
    body = {"email": email, "password": password}
    return Call("POST", "/auth/login", _one(m.TokenResponse), {"json": body}, auth=False)


def logout(refresh_token: str) -> Call[None]:
    return Call("POST", "/auth/logout", _none, {"json": {"refresh_token": refresh_token}})


def me() -> Call[m.UserRead]:
    return Call("GET", "/auth/me", _one(m.UserRead))


def create_api_key(
    name: str,
    deployment_ids: Iterable[str] | None,
    expires_in_days: int | None,
    extra: dict[str, Any] | None = None,
) -> Call[m.ApiKeyCreated]:
    body: dict[str, Any] = {"name": name}
    # Sent whenever given, even empty or 0: the server refuses those (422), whereas leaving
    # them out would make a key for every deployment, or one that never expires.
    if deployment_ids is not None:
        body["deployment_ids"] = [str(d) for d in deployment_ids]
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    body.update({k: v for k, v in (extra or {}).items() if v is not None})
    return Call("POST", "/auth/api-keys", _one(m.ApiKeyCreated), {"json": body})


def list_api_keys() -> Call[list[m.ApiKeyRead]]:
    return Call("GET", "/auth/api-keys", _many(m.ApiKeyRead))


def revoke_api_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"/auth/api-keys/{key_id}", _none)


def create_model(name: str, framework: str, description: str) -> Call[m.ModelRead]:
    body = {"name": name, "framework": framework, "description": description}
    return Call("POST", "/models", _one(m.ModelRead), {"json": body})


def list_models(limit: int, offset: int) -> Call[list[m.ModelRead]]:
    params = {"limit": limit, "offset": offset}
    return Call("GET", "/models", _many(m.ModelRead), {"params": params})


def get_model(model_id: str) -> Call[m.ModelRead]:
    return Call("GET", f"/models/{model_id}", _one(m.ModelRead))


def delete_model(model_id: str) -> Call[None]:
    return Call("DELETE", f"/models/{model_id}", _none)


def list_versions(model_id: str, limit: int, offset: int) -> Call[list[m.VersionRead]]:
    params = {"limit": limit, "offset": offset}
    return Call("GET", f"/models/{model_id}/versions", _many(m.VersionRead), {"params": params})


def get_version(model_id: str, ref: str) -> Call[m.VersionRead]:
    return Call("GET", f"/models/{model_id}/versions/{ref}", _one(m.VersionRead))


def get_build(version_id: str) -> Call[m.BuildRead]:
    return Call("GET", f"/builds/{version_id}", _one(m.BuildRead))


def deploy(
    version_id: str, replicas: int | None, name: str | None, extra: dict[str, Any] | None = None
) -> Call[m.DeploymentRead]:
    body: dict[str, Any] = {"version_id": str(version_id)}
    if replicas is not None:
        body["replicas"] = replicas
    if name:
        body["name"] = name
    body.update({k: v for k, v in (extra or {}).items() if v is not None})
    return Call("POST", "/deployments", _one(m.DeploymentRead), {"json": body})


def list_deployments(limit: int, offset: int) -> Call[list[m.DeploymentRead]]:
    params = {"limit": limit, "offset": offset}
    return Call("GET", "/deployments", _many(m.DeploymentRead), {"params": params})


def get_deployment(deployment_id: str) -> Call[m.DeploymentRead]:
    return Call("GET", f"/deployments/{deployment_id}", _one(m.DeploymentRead))


def update_deployment(deployment_id: str, body: dict[str, Any]) -> Call[m.DeploymentRead]:
    return Call("PATCH", f"/deployments/{deployment_id}", _one(m.DeploymentRead), {"json": body})


def rollback(deployment_id: str, revision: int | None) -> Call[m.DeploymentRead]:
    body = {"revision": revision} if revision is not None else {}
    path = f"/deployments/{deployment_id}/rollback"
    return Call("POST", path, _one(m.DeploymentRead), {"json": body})


def delete_deployment(deployment_id: str) -> Call[m.DeploymentRead | None]:
    return Call(
        "DELETE",
        f"/deployments/{deployment_id}",
        lambda body: m.DeploymentRead.model_validate(body) if body else None,
    )


def usage() -> Call[dict[str, Any]]:
    return Call("GET", "/usage", _raw)


def predict(deployment_id: str, data: Any) -> Call[dict[str, Any]]:
    return Call("POST", f"/predict/{deployment_id}", _raw, {"json": simple_payload(data)})


def infer(deployment_id: str, model_name: str, inputs: Any, name: str) -> Call[dict[str, Any]]:
    path = f"/predict/{deployment_id}/v2/models/{model_name}/infer"
    return Call("POST", path, _raw, {"json": infer_payload(inputs, name)})


@dataclass(frozen=True)
class LogEntry:
    """One line of a replica's log (`Client.logs`)."""

    replica: int
    line: str
    pod: str | None = None


def logs_request(
    deployment_id: str, follow: bool, replica: int | None, since: str | None, tail: int | None
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"follow": "true" if follow else "false"}
    if replica is not None:
        params["replica"] = replica
    if since:
        params["since"] = since
    if tail is not None:
        params["tail"] = tail
    return f"/deployments/{deployment_id}/logs", params


class SSEParser:
    """Server-sent events of the logs route, fed line by line."""

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str, Any] | None:
        if line == "":
            if not self.data:
                self.event = "message"
                return None
            event, data = self.event, "\n".join(self.data)
            self.event, self.data = "message", []
            return event, json.loads(data) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None
