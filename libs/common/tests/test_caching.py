"""The bounded LRU map behind every in-memory cache: what it keeps, what it drops first."""

from __future__ import annotations

import pytest
from kubeserve_common.caching import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(2)
    assert cache.put("a", 1) is None
    assert cache.put("b", 2) is None
    assert cache.get("a") == 1  # "a" is now the most recently used
    assert cache.put("c", 3) == ("b", 2)  # so "b" is pushed out, and said so
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_peek_leaves_the_order_alone() -> None:
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1
    assert cache.oldest() == ("a", 1)
    assert cache.put("c", 3) == ("a", 1)


def test_overwriting_refreshes_and_never_grows() -> None:
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.put("a", 10) is None
    assert cache.items() == [("b", 2), ("a", 10)]


def test_get_or_put_makes_once() -> None:
    cache: Lru[str, list[int]] = Lru(10)
    made = cache.get_or_put("k", list)
    made.append(1)
    assert cache.get_or_put("k", list) == [1]


def test_remove_where_pop_and_clear() -> None:
    cache: Lru[int, str] = Lru(10)
    for i in range(6):
        cache.put(i, "even" if i % 2 == 0 else "odd")
    assert cache.remove_where(lambda _, v: v == "odd") == 3
    assert list(cache) == [0, 2, 4]
    assert cache.pop(2) == "even" and cache.pop(2) is None
    cache.clear()
    assert len(cache) == 0 and cache.oldest() is None and cache.get(0) is None


def test_a_flood_of_new_keys_stays_within_the_bound() -> None:
    cache: Lru[int, int] = Lru(100)
    for i in range(10_000):
        cache.put(i, i)
    assert len(cache) == 100 and cache.oldest() == (9_900, 9_900)


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        Lru(0)
