"""`Lru`: the bounded in-memory map every cache of the platform keeps its entries in (verified
tokens, API-key answers, revoked users, routes, rate-limit buckets, prediction stats...). Past
`max_entries` the least recently used entry goes, so anyone sending new keys (tokens, paths,
addresses) costs memory only up to the bound.

A plain `OrderedDict` underneath: on the request path a hit is one dict lookup and one
`move_to_end`. What an entry means - an expiry, a confirmation time - stays with the cache that
uses it: expiry differs per use (a token's own `exp`, a TTL, serving stale while a dependency is
away), the bound does not.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    __slots__ = ("_data", "max_entries")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The entry, now the most recently used; None when absent."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The entry without marking it used (the order stays that of insertion)."""
        return self._data.get(key)

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Store `value` as the most recently used; returns the entry it pushed out, if any."""
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.max_entries:
            return data.popitem(last=False)
        return None

    def get_or_put(self, key: K, make: Callable[[], V]) -> V:
        """The entry for `key`, made (and stored) by `make()` when absent."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def oldest(self) -> tuple[K, V] | None:
        """The least recently used entry (the next to go), without touching it."""
        for item in self._data.items():
            return item
        return None

    def remove_where(self, drop: Callable[[K, V], bool]) -> int:
        """Remove every entry for which `drop(key, value)` holds; returns how many."""
        doomed = [k for k, v in self._data.items() if drop(k, v)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    def clear(self) -> None:
        self._data.clear()

    def items(self) -> list[tuple[K, V]]:
        """A snapshot, least recently used first."""
        return list(self._data.items())

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)
