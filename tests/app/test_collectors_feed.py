"""The Incoming SMTP Mail Feed's "Wait for up to N seconds for an incoming SMTP
connection" (seed-3 §8 [L5498-5506]) on a task.Clock, alone and in a collector run,
and the admin checks of the Download Rules list (If/Else/EndIf balance, §20.11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from tests.support.stack import Stack
from vpop3d.app import collectoradmin
from vpop3d.app.accounts import AdminError
from vpop3d.app.collectors import CollectorRunner
from vpop3d.app.etrn import wait_for_feed
from vpop3d.store import collectors as repo

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def fired(deferred: Deferred[Any]) -> bool:
    """Has it fired? (A call, so the checker does not narrow it between clock steps.)"""
    return bool(deferred.called)


def _advance_until(clock: Clock, done: Deferred[Any], limit: float = 3600) -> float:
    """Advance the clock one second at a time until ``done`` fires; the time it took."""
    start = clock.seconds()
    while not done.called and clock.seconds() - start < limit:
        clock.advance(1)
    return clock.seconds() - start


def test_wait_lasts_n_seconds_when_nothing_comes_in() -> None:
    """No inbound session: the run stays for the full N seconds, not one more."""
    clock = Clock()
    done = Deferred.fromCoroutine(wait_for_feed(clock, 20, lambda: 0))
    clock.advance(19)
    assert not fired(done)
    clock.advance(1)
    assert fired(done)
    assert done.result == "waited 20 s for incoming SMTP"


def test_wait_ends_when_the_isps_session_ends() -> None:
    """The manual's example: wait 30 s, a session from 3 s to 8 s: hang up at 8 s."""
    clock = Clock()
    sessions = [0]
    done = Deferred.fromCoroutine(wait_for_feed(clock, 30, lambda: sessions[0]))
    clock.advance(3)
    sessions[0] = 1
    clock.advance(5)
    assert not done.called  # still delivering at 8 s
    sessions[0] = 0
    clock.advance(1)
    assert fired(done)
    assert done.result == "waited 9 s for incoming SMTP (a session came in)"


def test_a_session_still_open_at_n_seconds_is_waited_for() -> None:
    """An inbound session running when N s are up keeps the run open until it ends;
    sessions already open before the wait do not count."""
    clock = Clock()
    sessions = [2]  # two unrelated sessions were open already
    done = Deferred.fromCoroutine(wait_for_feed(clock, 10, lambda: sessions[0]))
    clock.advance(5)
    sessions[0] = 3
    clock.advance(20)
    assert not fired(done)
    sessions[0] = 2
    clock.advance(1)
    assert fired(done)
    assert "26 s" in str(done.result)


def test_without_a_session_count_the_whole_wait_passes() -> None:
    """No listener to watch: the whole N seconds pass."""
    clock = Clock()
    done = Deferred.fromCoroutine(wait_for_feed(clock, 7))
    assert _advance_until(clock, done) == 7


@ensure_deferred
async def test_feed_collector_run_holds_its_slot_for_the_wait(stack: Stack) -> None:
    """A feed collector without ETRN still waits N s on the injected clock, and its
    Last connection result says so; wait 0 ends at once."""
    clock = Clock()
    runner = CollectorRunner(
        stack.db, stack.blobs, cast(Any, None), cast(Any, None), stack.bus, stack.settings,
        reactor=clock, hostname="mail.example.test", now=lambda: 1.8e9,
        inbound_sessions=lambda: 0,
    )  # fmt: skip
    collector = stack.db.run_sync(repo.add, "feed", kind="smtp-feed", wait_seconds=15)
    running = runner.run(collector)
    waited = 0
    while not running.called and waited < 100:
        await deferLater(reactor, 0.01, lambda: None)  # the store works in its threads
        clock.advance(1)
        waited += 1
    result = await running
    assert result.ok, result.text
    assert result.text == "OK: waited 15 s for incoming SMTP"
    assert 15 <= waited < 40
    row = stack.db.read_sync(repo.by_id, collector)
    assert row is not None
    assert row["last_result"] == "OK: waited 15 s for incoming SMTP"
    stack.db.run_sync(repo.update_fields, collector, wait_seconds=0)
    quick = await runner.run(collector)
    assert quick.text == "OK: nothing to do (no ETRN server, no wait)"


def test_rule_list_must_stay_balanced(stack: Stack) -> None:
    """An Else or EndIf without its If is refused on add, move and delete, and nothing
    is written; an If may wait for its EndIf (rules are added one at a time)."""
    save = collectoradmin.save_rule
    with pytest.raises(AdminError, match="Else rule must follow an If"):
        stack.db.run_sync(save, None, name="else", action="else")
    first = stack.db.run_sync(save, None, name="if", action="if",
                              conditions=[{"field": "Subject", "data": "a"}])  # fmt: skip
    assert collectoradmin.open_ifs(stack.db.read_sync(collectoradmin.rule_list)) == 1
    stack.db.run_sync(save, None, name="else", action="else")
    with pytest.raises(AdminError, match="only one per If"):
        stack.db.run_sync(save, None, name="else2", action="else")
    endif = stack.db.run_sync(save, None, name="end", action="endif")
    assert collectoradmin.open_ifs(stack.db.read_sync(collectoradmin.rule_list)) == 0
    with pytest.raises(AdminError, match="takes no conditions"):
        stack.db.run_sync(save, None, name="bad", action="endif",
                          conditions=[{"field": "To", "data": "b"}])  # fmt: skip
    with pytest.raises(AdminError, match="Else rule must follow an If"):
        stack.db.run_sync(collectoradmin.move_rule, endif, -1)  # the Else would be outside
    with pytest.raises(AdminError, match="must follow"):
        stack.db.run_sync(collectoradmin.delete_rule, first)  # Else and EndIf orphaned
    names = [r["name"] for r in stack.db.read_sync(repo.list_rules)]
    assert names == ["if", "else", "end"]
