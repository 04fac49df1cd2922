"""The runtime-backend port: where a deployment's replicas run.

Adapters: `local.LocalBackend` (runtime processes on 127.0.0.1, the embedded default) and
`backends.kubernetes.backend.KubernetesBackend` (a Helm release of charts/model-serving per
deployment in the owner's `user-{id}` namespace). The
deployer's reconcile service is the only caller: it reads the desired state from its database,
hands it to the backend and records what the backend observed. Backends are level-triggered -
every method may be called again with the same arguments, and `reconcile()` converges
everything (including after a deployer restart) - so a lost call is repaired by the next pass.

A backend may also expose `on_change: Callable[[], None] | None`; the reconcile service sets it
to its wake-up, so the backend can ask for a pass at once (the local backend does when a
replica process exits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from kubeserve_deployer.domain.deployments import DeploymentObservation, DeploymentSpec


class RuntimeBackend(Protocol):
    name: str

    async def start(self) -> None:
        """Acquire the backend's resources (warm pool, cluster client) and re-adopt what runs."""

    async def close(self) -> None:
        """Release resources. Replicas keep running: a deployer restart is not an outage."""

    @property
    def active(self) -> bool:
        """Whether this process may act now (the local backend allows one deployer per host)."""

    async def deploy(self, spec: DeploymentSpec) -> DeploymentObservation:
        """Make `spec` the desired state of its deployment and take one convergence step."""

    async def scale(self, deployment_id: UUID, replicas: int) -> DeploymentObservation:
        """Change the replica count of the deployment's current target revision."""

    async def undeploy(self, deployment_id: UUID) -> None:
        """Stop every replica of the deployment (idempotent); returns when they are gone."""

    async def status(self, deployment_id: UUID) -> DeploymentObservation:
        """What runs for the deployment now, without changing anything."""

    async def reconcile(self, specs: Sequence[DeploymentSpec]) -> dict[UUID, DeploymentObservation]:
        """One convergence pass over every deployment: start what is missing, restart what
        crashed, stop what is extra and stop everything of deployments absent from `specs`."""

    async def retire_tenant(self, user_id: UUID) -> None:
        """Remove whatever the backend keeps for a deleted user, after its deployments are gone
        (kubernetes: the `user-{id}` namespace). Idempotent; "already gone" is success."""

    def next_pass_in(self, idle: float) -> float:
        """Seconds until the next pass is worth running: soon while a replica is starting or a
        restart is due, `idle` otherwise."""
