"""The Connector Schedule gate on the QueueRunner, driven by a Clock (seed-3 §17, check 7)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from tests.app.queue_support import (
    START,
    FakeNet,
    FakeResolver,
    accept_all,
    enqueue,
    states,
)
from tests.support.stack import Stack
from vpop3d.app.queue import QueueRunner
from vpop3d.store import connectors

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

# START is 2033-05-18 03:33:20 UTC, a Wednesday.


def _runner(stack: Stack, net: FakeNet, clock: Clock) -> QueueRunner:
    return QueueRunner(
        stack.db,
        stack.blobs,
        stack.settings,
        clock,
        hostname="mail.example.test",
        resolver=FakeResolver({"x.test": ["mx.x.test"]}),  # type: ignore[arg-type]  # fake
        connect=net.connect,
        local_time=time.gmtime,
    )


async def _settle(runner: QueueRunner) -> None:
    """Let spawned runs finish (they wait on database threads, not on the Clock)."""
    from twisted.internet import reactor

    for _ in range(400):
        if runner.idle():
            return
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.01, d.callback, None)
        await d
    raise AssertionError("runner did not go idle")


@ensure_deferred
async def test_nothing_leaves_while_scheduling_is_disabled(stack: Stack) -> None:
    """Spec check 7: after first run schedule.enabled is False: no kick, tick or poll sends."""
    clock = Clock()
    clock.advance(START)
    net = FakeNet(hosts={"mx.x.test": accept_all})
    stack.db.run_sync(connectors.ensure_default)
    stack.db.run_sync(
        connectors.add_schedule_item, interval_min=1, start_min=0, end_min=1439, days_mask=127
    )
    qid = enqueue(stack, ["bob@x.test"])
    runner = _runner(stack, net, clock)
    runner.kick()
    clock.advance(0)
    await runner.tick()
    runner.poll()
    await _settle(runner)
    assert net.connects == []
    assert states(stack, qid) == {"bob@x.test": "pending"}


@ensure_deferred
async def test_scheduled_item_sends_only_in_its_window(stack: Stack) -> None:
    """With send-immediately off, mail leaves only when an item fires: 4:00 to 5:00 every
    30 minutes; at 3:33 nothing, at 4:00 it goes."""
    clock = Clock()
    clock.advance(START)
    stack.put_setting("schedule.enabled", True)
    stack.put_setting("schedule.send_immediately", False)
    net = FakeNet(hosts={"mx.x.test": accept_all})
    stack.db.run_sync(connectors.ensure_default)
    stack.db.run_sync(
        connectors.add_schedule_item, interval_min=30, start_min=4 * 60, end_min=5 * 60
    )
    qid = enqueue(stack, ["bob@x.test"])
    runner = _runner(stack, net, clock)
    runner.kick()
    clock.advance(0)
    await runner.tick()
    await _settle(runner)
    assert net.connects == []
    clock.advance(26 * 60 + 40)  # 04:00:00
    await runner.tick()
    await _settle(runner)
    assert net.connects == ["mx.x.test"]
    assert states(stack, qid) == {}


@ensure_deferred
async def test_send_immediately_on_kick_when_enabled(stack: Stack) -> None:
    """Check 48: with scheduling on and send-immediately, a kick sends at once."""
    clock = Clock()
    clock.advance(START)
    stack.put_setting("schedule.enabled", True)
    net = FakeNet(hosts={"mx.x.test": accept_all})
    stack.db.run_sync(connectors.ensure_default)
    enqueue(stack, ["bob@x.test"])
    runner = _runner(stack, net, clock)
    runner.kick()
    clock.advance(0)
    await _settle(runner)
    assert [s.recipients for s in net.sent] == [["bob@x.test"]]


@ensure_deferred
async def test_deny_item_blocks_a_run(stack: Stack) -> None:
    """A Deny item firing in the same minute keeps the connection from running."""
    clock = Clock()
    clock.advance(START + 26 * 60 + 40)  # 04:00
    stack.put_setting("schedule.enabled", True)
    stack.put_setting("schedule.send_immediately", False)
    net = FakeNet(hosts={"mx.x.test": accept_all})
    stack.db.run_sync(connectors.ensure_default)
    stack.db.run_sync(connectors.add_schedule_item, interval_min=5, start_min=0, end_min=1439)
    stack.db.run_sync(
        connectors.add_schedule_item,
        interval_min=60,
        start_min=0,
        end_min=1439,
        deny=True,
        use_default=False,
    )
    enqueue(stack, ["bob@x.test"])
    runner = _runner(stack, net, clock)
    await runner.tick()
    await _settle(runner)
    assert net.connects == []
    clock.advance(5 * 60)
    await runner.tick()
    await _settle(runner)
    assert net.connects == ["mx.x.test"]


def test_start_and_stop_service_cancel_timers(stack: Stack) -> None:
    """startService schedules the minute tick, poll and lease renewal; stopService ends them."""
    clock = Clock()
    clock.advance(START)
    runner = _runner(stack, FakeNet(), clock)
    runner.startService()
    assert clock.getDelayedCalls()
    runner.stopService()
    assert not [c for c in clock.getDelayedCalls() if c.active()]


@ensure_deferred
async def test_kick_is_debounced(stack: Stack) -> None:
    """Many kicks before the reactor turns give one run."""
    clock = Clock()
    clock.advance(START)
    runner = _runner(stack, FakeNet(), clock)
    runner.kick()
    runner.kick()
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0)
    await _settle(runner)


@ensure_deferred
async def test_minimum_gap_between_scheduled_runs(stack: Stack) -> None:
    """Check 46: items every 5 and every 6 minutes with a 2-minute gap run at
    :05 :10 :15 :18 past the hour (not :06 or :12)."""
    clock = Clock()
    clock.advance(START + 26 * 60 + 40)  # 04:00
    stack.put_setting("schedule.enabled", True)
    stack.put_setting("schedule.send_immediately", False)
    stack.put_setting("schedule.min_gap_minutes", 2)
    stack.db.run_sync(connectors.ensure_default)
    for interval in (5, 6):
        stack.db.run_sync(
            connectors.add_schedule_item, interval_min=interval, start_min=4 * 60, end_min=1439
        )
    runner = _runner(stack, FakeNet(), clock)
    ran: list[int] = []
    for minute in range(1, 20):
        clock.advance(60)
        before = dict(runner._last_scheduled)
        await runner.tick()
        if runner._last_scheduled != before:
            ran.append(minute)
    await _settle(runner)
    assert ran == [5, 10, 15, 18]
