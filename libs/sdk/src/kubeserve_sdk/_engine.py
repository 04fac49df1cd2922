"""How one implementation of the API serves both clients: an operation is a generator that
yields what it needs done (`Send` an HTTP request, `Pause`) and gets the answer back; `SyncDriver`
and `AsyncDriver` are the only code that does I/O. `@operation` turns such a generator into a
method that returns the result on `Client` and a coroutine on `AsyncClient`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
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


class SyncDriver:
    _http: httpx.Client
    _sleep: Callable[[float], None]

    def _drive(self, flow: Flow[T]) -> T:
        reply: Any = None
        error: httpx.TransportError | None = None
        while True:
            try:
                step = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, error = None, None
            if isinstance(step, Pause):
                (self._sleep if step.retry else time.sleep)(step.seconds)
                continue
            try:
                reply = self._http.request(step.method, step.url, **step.kwargs)
            except httpx.TransportError as exc:
                error = exc


class AsyncDriver:
    _http: httpx.AsyncClient
    _sleep: Callable[[float], Awaitable[None]]

    async def _drive(self, flow: Flow[T]) -> T:
        reply: Any = None
        error: httpx.TransportError | None = None
        while True:
            try:
                step = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, error = None, None
            if isinstance(step, Pause):
                await (self._sleep if step.retry else asyncio.sleep)(step.seconds)
                continue
            try:
                reply = await self._http.request(step.method, step.url, **step.kwargs)
            except httpx.TransportError as exc:
                error = exc


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
