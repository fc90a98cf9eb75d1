"""The routing cache loads once for many concurrent sessions, and refreshes after its TTL."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from vpop3d.app.routing import Router


class _CountingDatabase:
    """Hands out unfired Deferreds so the test decides when a load finishes."""

    def __init__(self) -> None:
        self.loads: list[Deferred[Any]] = []

    def read(self, fn: Any, *args: Any) -> Deferred[Any]:
        loading: Deferred[Any] = Deferred()
        self.loads.append(loading)
        return loading


def test_concurrent_callers_share_one_load() -> None:
    """Ten sessions asking at once cause one database load and all get its result."""
    clock = Clock()
    db = _CountingDatabase()
    cache = Router(db, clock)  # type: ignore[arg-type]  # a stand-in database
    results: list[object] = []
    for _ in range(10):
        Deferred.fromCoroutine(cache.snapshot()).addCallback(results.append)
    assert len(db.loads) == 1
    snapshot = object()
    db.loads[0].callback(snapshot)
    assert results == [snapshot] * 10


def test_reload_after_ttl_and_after_invalidate() -> None:
    """Within the TTL the cached data is used; after it, or after invalidate(), it reloads."""
    clock = Clock()
    db = _CountingDatabase()
    cache = Router(db, clock, ttl=2.0)  # type: ignore[arg-type]  # a stand-in database
    Deferred.fromCoroutine(cache.snapshot())
    db.loads[0].callback("first")
    clock.advance(1)
    Deferred.fromCoroutine(cache.snapshot())
    assert len(db.loads) == 1
    clock.advance(2)
    Deferred.fromCoroutine(cache.snapshot())
    assert len(db.loads) == 2
    db.loads[1].callback("second")
    cache.invalidate()
    Deferred.fromCoroutine(cache.snapshot())
    assert len(db.loads) == 3


def test_failed_load_reaches_every_waiter_and_the_next_call_retries() -> None:
    """A database error fails the waiting sessions; the next request loads again."""
    clock = Clock()
    db = _CountingDatabase()
    cache = Router(db, clock)  # type: ignore[arg-type]  # a stand-in database
    errors: list[object] = []
    for _ in range(3):
        Deferred.fromCoroutine(cache.snapshot()).addErrback(errors.append)
    db.loads[0].errback(RuntimeError("database gone"))
    assert len(errors) == 3
    Deferred.fromCoroutine(cache.snapshot())
    assert len(db.loads) == 2
