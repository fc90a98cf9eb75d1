"""Download Rules that leave the message at the ISP and tell someone (seed-3 §4.3):
Query (the administrator decides on the Messages tab), Redirect Query, Reject (a
delivery-failure report to the sender), Delete and Warn. Against a second vpop3d
store serving the "ISP" mailbox on loopback, as in test_collectors_loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection, select

from tests.integration import test_collectors_loopback as loopback
from tests.integration.test_collectors_loopback import DAY, World, add_rule, mail
from vpop3d.app import collectoradmin
from vpop3d.store import blobs as blob_repo
from vpop3d.store import collectors as repo
from vpop3d.store.tables import queue, queue_recipients

pytestmark = pytest.mark.network
world = loopback.world  # the fixture: our stack, a vpop3d "ISP" on loopback, a runner

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _states(world: World, collector: int) -> dict[str, str]:
    rows = world.local.db.read_sync(repo.uidls, collector)
    return {key: str(row["disposition"]) for key, row in rows.items()}


def _queued(world: World) -> list[tuple[str, str, bytes]]:
    """(sender, recipient, body) of every queued message."""

    def read(conn: Connection) -> list[tuple[str, str, bytes]]:
        query = select(queue.c.sender, queue.c.blob_id, queue_recipients.c.address).join(
            queue_recipients, queue_recipients.c.queue_id == queue.c.id
        )
        return [
            (row.sender, row.address, blob_repo.read_bytes(conn, world.local.blobs, row.blob_id))
            for row in conn.execute(query)
        ]

    return world.local.db.read_sync(read)


@ensure_deferred
async def test_query_waits_for_the_administrators_download(world: World) -> None:
    """Query: not downloaded, the recipient gets one query notice with the headers; the
    message waits at the ISP until the admin presses Download, then arrives once."""
    fred = world.local.add_user("fred")
    add_rule(world, "ask", "query", [{"field": "Subject", "op": "contains", "data": "big"}])
    world.put_at_isp(mail("fred@a.test", n=1).replace(b"message 1", b"big deal"))
    world.put_at_isp(mail("fred@a.test", n=2))
    collector = world.add_collector(use_rules=True)
    for _ in range(2):
        result = await world.run(collector)
        assert result.ok, result.text
    assert world.isp_count() == 1  # the queried one stays
    inbox = world.inbox(fred)
    assert len(inbox) == 2  # message 2 and one query notice, not two
    [notice] = [m for m in inbox if b"Subject: Download query: big deal" in m]
    assert b"X-VPOP3-Query: " in notice
    assert b"Messages tab of the Mail Collector isp" in notice
    assert b"\r\nSubject: big deal\r\n" in notice  # the original headers
    assert b"Body line" not in notice
    [queried] = [k for k, state in _states(world, collector).items() if state == "queried"]

    world.local.db.run_sync(collectoradmin.mark_uidl, collector, queried, get=True, dele=False)
    result = await world.run(collector)
    assert result.ok, result.text
    assert result.downloaded == 1
    assert world.isp_count() == 0
    delivered = [m for m in world.inbox(fred) if b"Subject: big deal\r\n" in m and b"Body" in m]
    assert len(delivered) == 1
    assert b"X-VPOP3Rules: ask download" in delivered[0]


@ensure_deferred
async def test_unanswered_query_is_deleted_after_the_query_download_delay(world: World) -> None:
    """With no decision the message is deleted at the ISP after the Query Download
    Delay (setting, default 14 days), never downloaded; Delete removes it at once."""
    fred = world.local.add_user("fred")
    world.local.put_setting("collectors.query_download_delay_days", 3)
    add_rule(world, "ask", "query", [{"field": "Always", "data": "1"}])
    world.put_at_isp(mail("fred@a.test", n=1))
    world.put_at_isp(mail("fred@a.test", n=2))
    collector = world.add_collector(use_rules=True)
    assert (await world.run(collector)).ok
    assert world.isp_count() == 2
    first, _second = sorted(_states(world, collector))
    world.local.db.run_sync(collectoradmin.mark_uidl, collector, first, get=False, dele=True)
    assert (await world.run(collector)).ok
    assert world.isp_count() == 1  # Delete pressed: gone without download
    world.clock[0] += 2 * DAY
    assert (await world.run(collector)).ok
    assert world.isp_count() == 1
    world.clock[0] += 1.5 * DAY
    result = await world.run(collector)
    assert result.ok, result.text
    assert world.isp_count() == 0
    assert all(b"Body line" not in m for m in world.inbox(fred))  # only the 2 notices
    assert len(world.inbox(fred)) == 2


@ensure_deferred
async def test_redirect_query_asks_the_targets_and_delivers_to_them(world: World) -> None:
    """Redirect Query: the notice goes to the rule's target; granted, the message is
    delivered to the target only."""
    fred = world.local.add_user("fred")
    boss = world.local.add_user("boss")
    add_rule(world, "vip", "redirect-query", [{"field": "Always", "data": "1"}], targets="boss")
    world.put_at_isp(mail("fred@a.test", n=1))
    collector = world.add_collector(use_rules=True)
    assert (await world.run(collector)).ok
    [notice] = world.inbox(boss)
    assert b"Subject: Download query: message 1" in notice
    assert world.inbox(fred) == []
    [key] = _states(world, collector)
    world.local.db.run_sync(collectoradmin.mark_uidl, collector, key, get=True, dele=False)
    assert (await world.run(collector)).ok
    assert world.inbox(fred) == []
    assert len(world.inbox(boss)) == 2
    assert b"X-VPOP3Rules: vip redirect" in world.inbox(boss)[1]


@ensure_deferred
async def test_reject_sends_one_failure_report_to_the_sender(world: World) -> None:
    """Reject: nothing downloaded, one RFC 3464 report to the (remote) sender queued,
    not repeated at the next run; the message goes after Leave on Server (seed-3 §20.4)."""
    fred = world.local.add_user("fred")
    add_rule(world, "no", "reject", [{"field": "From", "op": "contains", "data": "pest"}])
    world.put_at_isp(mail("fred@a.test", n=1, sender="pest@remote.test"))
    collector = world.add_collector(use_rules=True, leave_days=2)
    for _ in range(2):
        result = await world.run(collector)
        assert result.ok, result.text
    assert world.inbox(fred) == []
    [(sender, to, report)] = _queued(world)
    assert (sender, to) == ("", "pest@remote.test")
    assert b"Subject: Undelivered Mail Returned to Sender" in report
    assert b"Content-Type: multipart/report" in report
    assert b"Action: failed" in report
    assert b"rejected by download rule 'no'" in report
    assert list(_states(world, collector).values()) == ["rejected"]
    assert world.isp_count() == 1
    world.clock[0] += 3 * DAY
    assert (await world.run(collector)).ok
    assert world.isp_count() == 0
    assert len(_queued(world)) == 1


@ensure_deferred
async def test_delete_and_warn_tells_the_recipient(world: World) -> None:
    """Delete and Warn: deleted at the ISP at once, the recipient gets a deletion notice."""
    fred = world.local.add_user("fred")
    add_rule(world, "junk", "delete-and-warn", [{"field": "Always", "data": "1"}])
    world.put_at_isp(mail("fred@a.test", n=7))
    collector = world.add_collector(use_rules=True, leave_days=5)
    assert (await world.run(collector)).ok
    assert world.isp_count() == 0
    [notice] = world.inbox(fred)
    assert b"Subject: Message deleted: message 7" in notice
