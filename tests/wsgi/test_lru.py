"""Tests of roundup_wsgi.wsgi.lru: the byte-bounded LRU mapping."""

from __future__ import annotations

import threading

import pytest

from roundup_wsgi.wsgi.lru import ByteBoundedLRU


class Cache(ByteBoundedLRU[str]):
    """The public face a cache built on the class gives it."""

    get = ByteBoundedLRU._lookup
    put = ByteBoundedLRU._store
    discard = ByteBoundedLRU._discard


def test_least_recently_used_is_evicted_past_the_limit() -> None:
    cache = Cache(10)
    cache.put("a", "A", 4)
    cache.put("b", "B", 4)
    assert cache.get("a") == "A"  # now "b" is the least recently used
    cache.put("c", "C", 4)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    assert (len(cache), cache.size) == (2, 8)


def test_a_replaced_entry_is_counted_once() -> None:
    cache = Cache(10)
    cache.put("a", "old", 6)
    cache.put("a", "new", 3)
    assert (cache.get("a"), len(cache), cache.size) == ("new", 1, 3)


def test_an_entry_over_the_limit_is_not_kept() -> None:
    cache = Cache(10)
    cache.put("a", "A", 4)
    cache.put("big", "B", 11)
    assert (cache.get("a"), cache.get("big"), cache.size) == (None, None, 0)


def test_zero_holds_nothing() -> None:
    cache = Cache(0)
    cache.put("a", "A", 1)
    assert (cache.get("a"), len(cache)) == (None, 0)
    cache.put("empty", "E", 0)  # a zero-byte entry fits
    assert cache.get("empty") == "E"


def test_discard_only_drops_the_value_it_was_given() -> None:
    cache = Cache(10)
    cache.put("a", "first", 2)
    cache.discard("a", "other")  # another thread stored a new value meanwhile
    assert cache.get("a") == "first"
    cache.discard("a", "first")
    assert (cache.get("a"), cache.size) == (None, 0)
    cache.discard("missing", "x")


def test_clear() -> None:
    cache = Cache(10)
    cache.put("a", "A", 2)
    cache.put("b", "B", 3)
    cache.clear()
    assert (len(cache), cache.size, cache.get("a")) == (0, 0, None)


@pytest.mark.parametrize("size", [-1, 1.5, "10", None])
def test_a_bad_size_is_refused(size: object) -> None:
    with pytest.raises(ValueError, match="cache size must be >= 0 bytes"):
        Cache(size)  # type: ignore[arg-type]


def test_threads_keep_the_size_consistent() -> None:
    """Stores, lookups and discards from several threads: the size stays the
    sum of the entries' sizes and under the limit."""
    cache = Cache(1000)
    barrier = threading.Barrier(4)

    def work(thread: int) -> None:
        barrier.wait()
        for number in range(2000):
            key = (thread + number) % 97
            cache.put(key, f"{thread}-{number}", key % 13 + 1)
            cache.get((key * 7) % 97)
            if number % 5 == 0:
                cache.discard(key, f"{thread}-{number}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.size == sum(nbytes for _, nbytes in cache._entries.values())
    assert cache.size <= cache.max_bytes
