"""Query, Reject and Delete-and-Warn without sockets (seed-3 §4.3, §4.6, §20.4): who
is told, what the notices say, when a held message is removed at the server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import pytest_twisted
from sqlalchemy import Connection, select

from tests.support.stack import Stack
from vpop3d.app.collectornotices import CollectorNotices
from vpop3d.app.collectors import (
    DAY,
    QUERY_DELAY_DAYS,
    CollectorRunner,
    _held_disposition,
    _notice_recipients,
)
from vpop3d.app.delivery import DeliverySpool
from vpop3d.app.downloadrules import Verdict
from vpop3d.core.mapping import LocalDomains
from vpop3d.store import blobs as blob_repo
from vpop3d.store.tables import queue, queue_recipients

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

HEAD = (
    b"From: Pest <pest@remote.test>\r\nTo: fred@a.test\r\nSubject: Buy now\r\n"
    b"Message-ID: <m1@remote.test>\r\n\r\n"
)
CONFIG = SimpleNamespace(id=4, name="MyISP", username="box", server="pop.isp.test")


@dataclass
class Injected:
    sender: str
    recipients: list[str]
    body: bytes
    options: dict[str, Any]


class FakeDelivery:
    """Records what would be delivered."""

    def __init__(self) -> None:
        self.sent: list[Injected] = []

    async def inject(
        self, sender: str, recipients: Sequence[str], body: DeliverySpool, **options: Any
    ) -> None:
        data = b"".join(body.chunks())
        body.discard()
        self.sent.append(Injected(sender, list(recipients), data, options))


def test_notices_go_to_orig_targets_or_both() -> None:
    """Query and Delete and Warn tell the recipients; the Redirect and "other user"
    forms tell the targets; the Copy forms tell both, each once."""
    orig = ["fred@a.test"]

    def who(action: str, targets: str = "boss, fred@a.test") -> list[str]:
        return _notice_recipients(Verdict(action=action, targets=targets), orig)

    assert who("query") == ["fred@a.test"]
    assert who("redirect-query") == ["boss", "fred@a.test"]
    assert who("copy-query") == ["fred@a.test", "boss"]
    assert who("delete-and-warn") == ["fred@a.test"]
    assert who("delete-and-warn-other", "boss Customers") == ["boss"]
    assert who("delete-and-copy-warning", "boss") == ["fred@a.test", "boss"]
    assert [_held_disposition(a) for a in ("query", "copy-query", "reject", "ignore")] == [
        "queried",
        "queried",
        "rejected",
        "ignored",
    ]


def test_held_messages_leave_after_their_delay(stack: Stack) -> None:
    """A queried message waits the Query Download Delay (or a longer Leave on Server)
    from first sight; Ignore and Reject follow Leave on Server."""
    runner = CollectorRunner(
        stack.db, stack.blobs, cast(Any, None), cast(Any, None), stack.bus, stack.settings,
        reactor=cast(Any, None), hostname="mail.example.test", now=lambda: 0.0,
    )  # fmt: skip
    stack.put_setting(QUERY_DELAY_DAYS, 10)
    config = cast(Any, SimpleNamespace(leave_days=3))
    queried = {"disposition": "queried", "first_seen": 0.0, "retrieved_at": None}
    rejected = {**queried, "disposition": "rejected"}
    assert not runner._held_due(queried, config, 9.9 * DAY)
    assert runner._held_due(queried, config, 10 * DAY)
    assert not runner._held_due(rejected, config, 2.9 * DAY)
    assert runner._held_due(rejected, config, 3 * DAY)
    longer = cast(Any, SimpleNamespace(leave_days=30))
    assert not runner._held_due(queried, longer, 20 * DAY)  # LoS longer than the delay


@ensure_deferred
async def test_query_notice_shows_the_headers_and_how_to_get_it(stack: Stack) -> None:
    """The query notice: 'Download query: <subject>', the token header, the way to
    have it downloaded, the delay, and the original headers (never the body)."""
    delivery = FakeDelivery()
    local = LocalDomains.parse("a.test")
    notices = CollectorNotices(
        cast(Any, delivery), stack.db, stack.blobs, "mail.example.test",
        local_domains=local, collector_id=4,
    )  # fmt: skip
    await notices.query(CONFIG, "uid-1", HEAD, ["fred@a.test"], "ask", 14, 1.7e9)
    [sent] = delivery.sent
    assert sent.sender == ""
    assert sent.recipients == ["fred@a.test"]
    assert sent.options["local_domains"] is local
    assert sent.options["collector_id"] == 4
    assert b"Subject: Download query: Buy now\r\n" in sent.body
    assert b"X-VPOP3-Query: 4:uid-1\r\n" in sent.body
    assert b"Messages tab of the Mail Collector MyISP" in sent.body
    assert b"after 14 days" in sent.body
    assert sent.body.endswith(HEAD)
    await notices.deleted(CONFIG, HEAD, [], "junk", 1.7e9)  # nobody to tell: nothing sent
    assert len(delivery.sent) == 1


@ensure_deferred
async def test_reject_queues_one_report_for_a_remote_sender_only(stack: Stack) -> None:
    """Reject: an RFC 3464 failure report from <> to the sender, naming the rule and
    carrying the headers; none for a null sender (RFC 5321 §6.1)."""
    notices = CollectorNotices(cast(Any, FakeDelivery()), stack.db, stack.blobs, "mx.test")
    verdict = Verdict(action="reject", rule="no pests")
    await notices.reject(CONFIG, HEAD, "<>", ["fred@a.test"], verdict, 1.7e9)
    await notices.reject(CONFIG, HEAD, "pest@remote.test", ["fred@a.test"], verdict, 1.7e9)

    def queued(conn: Connection) -> list[tuple[str, str, bytes]]:
        query = select(queue.c.sender, queue.c.blob_id, queue_recipients.c.address).join(
            queue_recipients, queue_recipients.c.queue_id == queue.c.id
        )
        return [
            (row.sender, row.address, blob_repo.read_bytes(conn, stack.blobs, row.blob_id))
            for row in conn.execute(query)
        ]

    [(sender, to, report)] = stack.db.read_sync(queued)
    assert (sender, to) == ("", "pest@remote.test")
    assert b"Final-Recipient: rfc822; fred@a.test" in report
    assert b"Status: 5.7.1" in report
    assert b"rejected by download rule 'no pests' of Mail Collector MyISP" in report
    assert b"Message-ID: <m1@remote.test>" in report
