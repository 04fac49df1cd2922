"""Leader election over a Lease (`kubeserve-deployer` in the deployer's namespace), so the
platform chart can run several deployer replicas: only the holder drives Helm and the cluster,
the others stand by and take over when it stops renewing (lease.py has the rule).

One attempt per `retry_period`: read the Lease, take or renew it with a write conditioned on the
version read (two candidates cannot both win), or wait while someone else holds it. A graceful
stop releases the Lease so a standby takes over at once instead of after `lease_duration`.

Written on our own `KubernetesPort` rather than kubernetes-asyncio's `leaderelection` module:
that one times renewals with naive local wall-clock strings (wrong outside UTC), has no
per-call timeout and offers no "am I leading now" check, which the reconcile loop needs before
every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from kubeserve_deployer.backends.kubernetes.cluster import ClusterError, KubernetesPort
from kubeserve_deployer.backends.kubernetes.lease import (
    LeaseRecord,
    claim,
    held_by_another,
    released,
)
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings

log = logging.getLogger(__name__)


def default_identity() -> str:
    """The pod's name (its hostname) plus a random suffix: a restarted container is a new
    candidate, never mistaken for the holder it replaced."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        kube: KubernetesPort,
        config: KubernetesSettings,
        *,
        identity: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.namespace = config.resolved_lease_namespace()
        self.name = config.lease_name
        self.identity = identity or config.identity or default_identity()
        self.duration = config.lease_duration_seconds
        self.renew_deadline = config.renew_deadline_seconds
        self.retry_period = config.retry_period_seconds
        self.clock = clock
        self.wall = wall
        # Called when leadership is gained or lost (the reconcile loop's wake-up).
        self.on_change: Callable[[], None] | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = -math.inf
        self._leading_until = -math.inf
        self._was_leader = False
        self._last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        """True while this process may act: it renewed within the renew deadline."""
        return self.clock() < self._leading_until

    @property
    def holder(self) -> str | None:
        """Who holds the Lease as last seen (for logs and status)."""
        return self._observed.holder if self._observed is not None else None

    async def attempt(self) -> bool:
        """One try to take or renew the Lease; True when this process now leads."""
        started = self.clock()
        try:
            current = await self.kube.read_lease(self.namespace, self.name)
            if current is not None and (
                self._observed is None
                or current.resource_version != self._observed.resource_version
            ):
                self._observed, self._observed_at = current, started
            if current is not None and held_by_another(
                current, self.identity, self._observed_at, started, self.duration
            ):
                self._leading_until = -math.inf
                return self._settle(False)
            stored = await self.kube.write_lease(
                self.namespace,
                self.name,
                claim(current, self.identity, math.ceil(self.duration), self.wall()),
            )
        except ClusterError as exc:
            # A conflict (someone else wrote first) or an API outage: not renewed this time.
            # Leadership lapses by itself once the renew deadline passes.
            message = str(exc)
            if message != self._last_error:
                log.warning("lease %s/%s: %s", self.namespace, self.name, message[:300])
                self._last_error = message
            return self._settle(self.is_leader)
        self._last_error = None
        self._observed, self._observed_at = stored, started
        self._leading_until = started + self.renew_deadline
        return self._settle(True)

    def _settle(self, leading: bool) -> bool:
        if leading != self._was_leader:
            self._was_leader = leading
            log.info(
                "%s leadership of %s/%s",
                "acquired" if leading else "lost",
                self.namespace,
                self.name,
                extra={"identity": self.identity},
            )
            if self.on_change is not None:
                self.on_change()
        return leading

    async def release(self) -> None:
        """Step down (graceful stop): the next candidate need not wait the Lease out."""
        if not self.is_leader or self._observed is None:
            return
        self._leading_until = -math.inf
        self._settle(False)
        with contextlib.suppress(ClusterError):
            await self.kube.write_lease(
                self.namespace, self.name, released(self._observed, self.wall())
            )

    # -- the background loop -------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lease")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.release()

    async def _run(self) -> None:
        while True:
            try:
                await self.attempt()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease attempt failed")
            # Jitter so standbys do not all ask at the same instant.
            await asyncio.sleep(self.retry_period * random.uniform(0.8, 1.0))  # noqa: S311
