"""What the distributed chaos suite watches from outside the platform: the events on the broker
(a queue of our own bound to the platform's exchange, as an external subscriber would bind
one), the calls a test makes while a link is cut, and the runtime processes on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    id: str
    type: str
    subject: str
    data: dict[str, Any]


class EventTap:
    """Every CloudEvent published on `{prefix}kubeserve.events`, received straight from the
    broker (not through the proxy the platform's services use), on a thread of its own."""

    def __init__(self, amqp_url: str, exchange: str) -> None:
        self.amqp_url = amqp_url
        self.exchange = exchange
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="tap")
        self._connection: aio_pika.abc.AbstractConnection | None = None

    def start(self) -> EventTap:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._connection = await aio_pika.connect(self.amqp_url, timeout=10)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._on_message, no_ack=True)

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        seen = Seen(body["id"], body["type"], body.get("subject") or "", body.get("data") or {})
        with self._lock:
            self._seen.append(seen)

    def seen(self, type_contains: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if type_contains in s.type]


# -- calls made while a link is cut ------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    at: float
    call: str
    status: int
    code: str | None  # the error code of a JSON error body
    retry_after: str | None
    ok: bool  # the call did what it should (for predictions: the right classes)
    body: str
    id: str | None  # the `id` of what a create answered


def answer_of(call: str, response: httpx.Response, ok: bool | None = None) -> Answer:
    code = resource = None
    with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
        elif isinstance(body, dict) and body.get("id") is not None:
            resource = str(body["id"])
    return Answer(
        at=time.monotonic(),
        call=call,
        status=response.status_code,
        code=code,
        retry_after=response.headers.get("retry-after"),
        ok=response.is_success if ok is None else ok,
        body=response.text[:300],
        id=resource,
    )


@dataclass
class Traffic:
    """Worker threads calling the platform in a loop until `stop()`; every answer recorded."""

    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a call that got no HTTP answer at all
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, body: Callable[[httpx.Client], list[Answer]], client: httpx.Client) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    got = body(client)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.errors.append(f"{time.monotonic():.1f} {exc!r}")
                    continue
                with self._lock:
                    self.answers.extend(got)
                time.sleep(0.05)

        thread = threading.Thread(target=loop, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def wait_for(predicate: Callable[[], tuple[bool, Any]], timeout: float, what: str) -> Any:
    """Poll `predicate` (-> (done, what was seen)) until done; fail with the last thing seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            done, last = predicate()
        except httpx.HTTPError as exc:
            done, last = False, repr(exc)
        if done:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last}")


# -- runtime processes -----------------------------------------------------------------------


def runtime_processes(runtime_dir: Path) -> tuple[dict[int, str], set[int]]:
    """The replicas (pid -> deployment id) and warm pool processes of a deployer's
    `runtime_dir`, from /proc, whatever the deployer believes: a replica writes its stdout to
    `{runtime_dir}/logs/{deployment}/...`, the warm pool its stderr to `{runtime_dir}/pool.log`.
    A sandboxed replica is two processes (its supervisor and the confined child), counted
    once."""
    marker = str(runtime_dir.resolve())
    replicas: dict[int, str] = {}
    pool: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            out = os.readlink(f"/proc/{entry}/fd/1")
            err = os.readlink(f"/proc/{entry}/fd/2")
            if _state(int(entry)) == "Z":
                continue
        except OSError:
            continue
        if out.startswith(marker + "/logs/"):
            replicas[int(entry)] = out[len(marker) + 6 :].split("/")[0]
        elif err == marker + "/pool.log":
            pool.add(int(entry))
    replicas = {pid: dep for pid, dep in replicas.items() if parent_of(pid) not in replicas}
    return replicas, pool


def descends_from(pid: int, ancestor: int) -> bool:
    current: int | None = pid
    for _ in range(64):
        if current is None or current <= 1:
            return False
        if current == ancestor:
            return True
        current = parent_of(current)
    return False


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        text = fh.read()
    return text[text.rindex(")") + 2 :].split()[0]


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[1])


# -- broker clean-up ---------------------------------------------------------------------------


def delete_queues_with_prefix(amqp_url: str, prefix: str) -> None:
    """Delete the queues and exchanges the platform declared under `prefix` on the shared broker
    (queue names listed by `rabbitmqctl` when it is on this machine; else they stay, harmlessly,
    under their unique prefix)."""
    try:
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    names = [n.strip() for n in listed.splitlines() if n.strip().startswith(prefix)]
    asyncio.run(_delete(amqp_url, prefix, names))


async def _delete(amqp_url: str, prefix: str, queues: list[str]) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        for name in queues:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        channel = await connection.channel()
        for exchange in (f"{prefix}kubeserve.events", f"{prefix}kubeserve.dlx"):
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
    finally:
        await connection.close()
