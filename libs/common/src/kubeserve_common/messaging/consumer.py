"""The consumer runner shared by both bus adapters: parse, run the handler, classify the outcome.

ack only after the handler (and so its transaction) finished; transient error -> delayed retry
while attempts remain; permanent error or an invalid message -> dead-letter at once.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

from pydantic import ValidationError

from kubeserve_common.errors import PermanentError
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.logging import event_id_var, tenant_id_var
from kubeserve_common.messaging.bus import Handler, Subscription
from kubeserve_common.metrics import CONSUMER_LATENCY, CONSUMER_MESSAGES

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    ACK = "processed"
    RETRY = "retried"
    DEAD = "dead_lettered"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""


async def run_handler(
    service: str, subscription: Subscription, handler: Handler, body: bytes, attempt: int
) -> Verdict:
    """Run `handler` on one delivery. `attempt` counts from 1 (retries and redeliveries)."""
    queue = subscription.queue
    try:
        event = CloudEvent.from_json(body)
    except (ValidationError, ValueError) as exc:
        CONSUMER_MESSAGES.labels(service, queue, Outcome.DEAD.value).inc()
        log.warning(
            "invalid message dead-lettered", extra={"queue": queue, "error": str(exc)[:500]}
        )
        return Verdict(Outcome.DEAD, f"invalid CloudEvent: {str(exc)[:500]}")

    event_token = event_id_var.set(event.id)
    tenant_token = tenant_id_var.set(event.tenantid)
    started = time.perf_counter()
    try:
        await handler(event)
    except (PermanentError, ValidationError) as exc:
        CONSUMER_MESSAGES.labels(service, queue, Outcome.DEAD.value).inc()
        log.warning(
            "permanent failure, dead-lettered",
            extra={"queue": queue, "event_type": event.type, "error": str(exc)[:500]},
        )
        return Verdict(Outcome.DEAD, f"{type(exc).__name__}: {str(exc)[:500]}")
    except Exception as exc:  # transient by default: retried, then dead-lettered
        reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        if attempt >= subscription.max_attempts:
            CONSUMER_MESSAGES.labels(service, queue, Outcome.DEAD.value).inc()
            log.error(
                "retries exhausted, dead-lettered",
                extra={"queue": queue, "attempt": attempt, "error": reason},
            )
            return Verdict(Outcome.DEAD, f"gave up after {attempt} attempts: {reason}")
        CONSUMER_MESSAGES.labels(service, queue, Outcome.RETRY.value).inc()
        log.warning(
            "transient failure, will retry",
            extra={"queue": queue, "attempt": attempt, "error": reason},
        )
        return Verdict(Outcome.RETRY, reason)
    finally:
        CONSUMER_LATENCY.labels(service, queue).observe(time.perf_counter() - started)
        event_id_var.reset(event_token)
        tenant_id_var.reset(tenant_token)
    CONSUMER_MESSAGES.labels(service, queue, Outcome.ACK.value).inc()
    return Verdict(Outcome.ACK)
