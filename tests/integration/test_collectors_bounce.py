"""Routing Errors bounce modifiers end to end (seed-3 §6): a collector downloads an
unroutable message over loopback POP3; "Send a bounce message to the sender" queues
a bounce beside the chosen option, and "Don't generate bounce messages if spam score
>= N" stops it when the message's own spam header scores at least N."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection, select

from tests.integration.test_collectors_loopback import World, _user_id, mail
from tests.integration.test_collectors_loopback import world as world
from vpop3d.store.tables import queue, queue_recipients

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _queued(world: World) -> list[tuple[str, str, str]]:
    def read(conn: Connection) -> list[tuple[str, str, str]]:
        query = select(queue.c.kind, queue.c.sender, queue_recipients.c.address).join(
            queue_recipients, queue_recipients.c.queue_id == queue.c.id
        )
        return [(r.kind, r.sender, r.address) for r in conn.execute(query)]

    return world.local.db.read_sync(read)


def _spammy(score: str, n: int) -> bytes:
    body = mail("nobody@a.test", n=n, sender="victim@remote.test")
    return score.encode() + b"\r\n" + body


@ensure_deferred
async def test_modifier_bounces_besides_the_admin_notice(world: World) -> None:
    """Error Message to the admin plus the modifier: the admin gets the notice and
    a null-path bounce is queued to the original sender."""
    admin_id = _user_id(world, "postmaster")
    world.put_at_isp(mail("nobody@a.test", n=1, sender="victim@remote.test"))
    collector = world.add_collector(accepted_domains="a.test", error_also_bounce=True)
    result = await world.run(collector)
    assert result.ok, result.text
    [notice] = world.inbox(admin_id)
    assert b"Subject: Routing error in Mail Collector isp" in notice
    assert _queued(world) == [("internet", "", "victim@remote.test")]


@ensure_deferred
async def test_modifier_off_sends_no_bounce(world: World) -> None:
    """By default (modifier off) only the admin notice is produced."""
    admin_id = _user_id(world, "postmaster")
    world.put_at_isp(mail("nobody@a.test", n=1, sender="victim@remote.test"))
    collector = world.add_collector(accepted_domains="a.test")
    assert (await world.run(collector)).ok
    assert len(world.inbox(admin_id)) == 1
    assert _queued(world) == []


@ensure_deferred
async def test_spam_score_at_or_above_limit_stops_the_modifier_bounce(world: World) -> None:
    """X-Spam-Score: 7.3 with a limit of 5: the admin still gets the notice, and no
    bounce is queued."""
    admin_id = _user_id(world, "postmaster")
    world.put_at_isp(_spammy("X-Spam-Score: 7.3", 1))
    collector = world.add_collector(
        accepted_domains="a.test", error_also_bounce=True, error_bounce_spam_score=5
    )
    assert (await world.run(collector)).ok
    [notice] = world.inbox(admin_id)
    assert b"spam score 7.3 >= 5" in notice
    assert _queued(world) == []
    assert world.isp_count() == 0


@ensure_deferred
async def test_spam_score_stops_the_bounce_option(world: World) -> None:
    """seed-1 check 29: Bounce with "spam score >= 5" and a message scoring 7 (as
    SpamAssassin writes it): no bounce; a message scoring 2 is bounced."""
    world.put_at_isp(_spammy("X-Spam-Status: Yes, score=7.0 required=5.0 tests=X", 1))
    collector = world.add_collector(
        accepted_domains="a.test", error_action="bounce", error_bounce_spam_score=5
    )
    assert (await world.run(collector)).ok
    assert _queued(world) == []
    world.put_at_isp(_spammy("X-Spam-Status: No, score=2.0 required=5.0 tests=X", 2))
    assert (await world.run(collector)).ok
    assert _queued(world) == [("internet", "", "victim@remote.test")]
    assert world.isp_count() == 0
