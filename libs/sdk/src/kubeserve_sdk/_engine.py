"""How one implementation of the API serves both clients: an operation is a generator that
yields what it needs done (`Send` an HTTP request, `Pause`) and gets the answer back; `SyncDriver`
and `AsyncDriver` are the only code that does I/O. `@operation` turns such a generator into a
method that returns the result on `Client` and a coroutine on `AsyncClient`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import httpx

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """An HTTP request; the answer is the `httpx.Response`, or its `httpx.TransportError`
    thrown into the operation."""

    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pause:
    """Wait `seconds`: before a retry (the client's injectable `sleep`), or between polls."""

    seconds: float
    retry: bool = True


Step = Send | Pause
Flow = Generator[Step, Any, T]


@dataclass(frozen=True)
class _Done(Generic[T]):
    value: T


@dataclass
class _Answer(Generic[T]):
    """What the driver hands back to the operation: the reply to its last step, or the
    transport error to throw into it."""

    reply: Any = None
    error: httpx.TransportError | None = None

    def resume(self, flow: Flow[T]) -> Step | _Done[T]:
        """The operation's next step, or its result once it returned."""
        try:
            return flow.send(self.reply) if self.error is None else flow.throw(self.error)
        except StopIteration as done:
            return _Done(done.value)

    @contextlib.contextmanager
    def catching(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            self.error = exc


class SyncDriver:
    _http: httpx.Client
    _sleep: Callable[[float], None]

    def _drive(self, flow: Flow[T]) -> T:
        answer = _Answer[T]()
        while not isinstance(step := answer.resume(flow), _Done):
            answer = _Answer()
            if isinstance(step, Pause):
                (self._sleep if step.retry else time.sleep)(step.seconds)
                continue
            with answer.catching():
                answer.reply = self._http.request(step.method, step.url, **step.kwargs)
        return step.value


class AsyncDriver:
    _http: httpx.AsyncClient
    _sleep: Callable[[float], Awaitable[None]]

    async def _drive(self, flow: Flow[T]) -> T:
        answer = _Answer[T]()
        while not isinstance(step := answer.resume(flow), _Done):
            answer = _Answer()
            if isinstance(step, Pause):
                await (self._sleep if step.retry else asyncio.sleep)(step.seconds)
                continue
            with answer.catching():
                answer.reply = await self._http.request(step.method, step.url, **step.kwargs)
        return step.value


class operation(Generic[P, T]):
    """A shared method: `Client().name(...)` returns T, `AsyncClient().name(...)` a coroutine
    of T; both keep the generator's name, docstring and signature (without `self`)."""

    def __init__(self, flow: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        def sync(client: SyncDriver, *args: Any, **kwargs: Any) -> Any:
            return client._drive(flow(client, *args, **kwargs))

        async def run(client: AsyncDriver, *args: Any, **kwargs: Any) -> Any:
            return await client._drive(flow(client, *args, **kwargs))

        self._sync = functools.update_wrapper(sync, flow)
        self._async = functools.update_wrapper(run, flow)
        functools.update_wrapper(self, flow)
        # What `help()` and IDEs show: the result type, not the generator's `Flow[...]`.
        signature = inspect.signature(flow)
        shown = str(signature.return_annotation).removeprefix("Flow[").removesuffix("]")
        self._sync.__signature__ = self._async.__signature__ = signature.replace(  # type: ignore[attr-defined]
            return_annotation=shown
        )

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> operation[P, T]: ...

    @overload
    def __get__(self, obj: SyncDriver, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, obj: AsyncDriver, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, obj: object, owner: type[Any]) -> Any:
        if obj is None:
            return self
        if isinstance(obj, AsyncDriver):
            return types.MethodType(self._async, obj)
        return types.MethodType(self._sync, obj)

    def __call__(self, client: SyncDriver | AsyncDriver, *args: Any, **kwargs: Any) -> Any:
        """`Client.name(client, ...)`, as with a plain method."""
        return self.__get__(client, type(client))(*args, **kwargs)
