"""Broker names in one place: the events exchange, the dead-letter exchange and per-consumer
queues `q.<service>.<purpose>` with their retry and dead-letter queues."""

from __future__ import annotations

import re
from dataclasses import dataclass

EVENTS_EXCHANGE = "kubeserve.events"
DEAD_LETTER_EXCHANGE = "kubeserve.dlx"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Topology:
    """Names under an optional prefix, so test runs sharing one broker never collide."""

    prefix: str = ""

    @property
    def events_exchange(self) -> str:
        return f"{self.prefix}{EVENTS_EXCHANGE}"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}{DEAD_LETTER_EXCHANGE}"

    def queue(self, service: str, purpose: str) -> str:
        for part in (service, purpose):
            if not _NAME.match(part):
                raise ValueError(f"invalid queue name part {part!r}")
        return f"{self.prefix}q.{service}.{purpose}"

    @staticmethod
    def retry_queue(queue: str) -> str:
        return f"{queue}.retry"

    def dead_letter_queue(self, queue: str) -> str:
        base = queue.removeprefix(self.prefix)
        return f"{self.prefix}dlq.{base.removeprefix('q.')}"


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic semantics: `*` is one word, `#` zero or more words."""
    pat, key = pattern.split("."), routing_key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(key)
        if pat[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(key) + 1))
        if j == len(key):
            return False
        return (pat[i] == "*" or pat[i] == key[j]) and match(i + 1, j + 1)

    return match(0, 0)
