"""QueueRunner: per-recipient results, retries on a Clock, DSNs, relay failover, limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest_twisted
from sqlalchemy import Connection
from twisted.internet.task import Clock

from tests.app.queue_support import (
    START,
    FakeNet,
    FakeResolver,
    accept_all,
    enqueue,
    lan_route,
    make_runner,
    reply_for,
    states,
)
from tests.support.stack import Stack
from vpop3d.app.dns import DNSFailure
from vpop3d.core.reply import Reply
from vpop3d.store import blobs as blob_repo
from vpop3d.store import connectors, folders, leases, messages
from vpop3d.store import queue as queue_repo

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _clock() -> Clock:
    clock = Clock()
    clock.advance(START)
    return clock


def _inbox_texts(stack: Stack, user: str) -> list[bytes]:
    def read(conn: Connection) -> list[bytes]:
        from vpop3d.store import users

        row = users.by_name(conn, user)
        assert row is not None
        inbox = folders.inbox(conn, row.id)
        return [
            blob_repo.read_bytes(conn, stack.blobs, m.blob_id)
            for m in messages.in_folder(conn, inbox.id)
        ]

    return stack.db.run_sync(read)


def _connection(stack: Stack, **sender: Any) -> int:
    cid = stack.db.run_sync(connectors.ensure_default)
    if sender:
        stack.db.run_sync(connectors.update_sender, cid, **sender)
    return cid


def _three_domains() -> tuple[FakeNet, FakeResolver]:
    net = FakeNet(
        hosts={
            "mx.ok.test": accept_all,
            "mx.reject.test": reply_for(550, "5.1.1", "no such user"),
        }
    )
    resolver = FakeResolver(
        {
            "ok.test": ["mx.ok.test"],
            "reject.test": ["mx.reject.test"],
            "down.test": ["mx.down.test"],
        }
    )
    return net, resolver


@ensure_deferred
async def test_three_domains_one_delivery_one_dsn_one_retry(stack: Stack) -> None:
    """Down / rejecting / accepting domains: one delivery, one DSN naming the rejected
    recipient, one retry pending at the first backoff time."""
    stack.add_user("alice")
    clock = _clock()
    net, resolver = _three_domains()
    cid = _connection(stack)
    qid = enqueue(stack, ["a@down.test", "b@reject.test", "c@ok.test"])
    runner = make_runner(stack, net, clock, resolver)

    report = await runner.run_connection(cid)

    assert [(s.host, s.recipients) for s in net.sent] == [("mx.ok.test", ["c@ok.test"])]
    assert states(stack, qid) == {
        "a@down.test": "deferred",
        "b@reject.test": "failed",
        "c@ok.test": "delivered",
    }
    (bounce,) = _inbox_texts(stack, "alice")
    assert b"Final-Recipient: rfc822; b@reject.test" in bounce
    assert b"a@down.test" not in bounce
    assert (
        b"c@ok.test"
        not in bounce.split(b"\r\n\r\n", 1)[1].split(b"Content-Description: Undelivered")[0]
    )
    assert b"multipart/report; report-type=delivery-status" in bounce
    entry = stack.db.run_sync(queue_repo.entry, qid)
    assert entry is not None
    (down,) = [r for r in entry.recipients if r.state == "deferred"]
    assert down.next_attempt_at == START + 5 * 60
    assert report.delivered == 1
    assert report.failed == 1
    assert report.deferred == 1


@ensure_deferred
async def test_4xx_retried_at_the_scheduled_time(stack: Stack) -> None:
    """A 451 defers; nothing is tried before the retry time; at it, delivery happens."""
    clock = _clock()
    answers = [Reply(451, "4.3.0", "try later"), Reply(250, "2.0.0", "ok")]
    net = FakeNet(
        hosts={"mx.x.test": lambda _a: answers[0] if len(net.connects) == 1 else answers[1]}
    )
    resolver = FakeResolver({"x.test": ["mx.x.test"]})
    cid = _connection(stack)
    qid = enqueue(stack, ["bob@x.test"])
    runner = make_runner(stack, net, clock, resolver)

    await runner.run_connection(cid)
    assert states(stack, qid) == {"bob@x.test": "deferred"}
    clock.advance(5 * 60 - 1)
    await runner.run_connection(cid)
    assert len(net.connects) == 1  # not due yet
    clock.advance(1)
    await runner.run_connection(cid)
    assert len(net.connects) == 2
    assert states(stack, qid) == {}  # delivered and removed
    assert [s.recipients for s in net.sent] == [["bob@x.test"]]


@ensure_deferred
async def test_5xx_null_sender_gets_no_dsn(stack: Stack) -> None:
    """RFC 5321 §6.1: a failed bounce (null sender) produces no further bounce."""
    clock = _clock()
    net = FakeNet(hosts={"mx.x.test": reply_for(550, "5.1.1", "unknown")})
    cid = _connection(stack)
    qid = enqueue(stack, ["bob@x.test"], sender="")
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx.x.test"]}))
    report = await runner.run_connection(cid)
    assert report.failed == 1
    assert report.notices == 0
    assert states(stack, qid) == {}
    assert stack.db.run_sync(queue_repo.count) == 0


@ensure_deferred
async def test_5xx_to_remote_sender_queues_one_dsn_from_null(stack: Stack) -> None:
    """A remote sender's bounce goes back out through the queue from <>."""
    clock = _clock()
    net = FakeNet(hosts={"mx.x.test": reply_for(550, "5.1.1", "unknown")})
    cid = _connection(stack)
    enqueue(stack, ["bob@x.test", "carol@x.test"], sender="someone@remote.test")
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx.x.test"]}))
    await runner.run_connection(cid)
    (notice,) = stack.db.run_sync(queue_repo.entries)
    assert notice.sender == ""
    assert [r[0] for r in notice.recipients] == ["someone@remote.test"]


@ensure_deferred
async def test_notify_never_suppresses_the_dsn(stack: Stack) -> None:
    """RFC 3461 §4.1: NOTIFY=NEVER means no report at all."""
    stack.add_user("alice")
    clock = _clock()
    net = FakeNet(hosts={"mx.x.test": reply_for(550, "5.1.1", "unknown")})
    cid = _connection(stack)
    enqueue(stack, [queue_repo.QueuedRecipient("bob@x.test", notify="NEVER")])
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx.x.test"]}))
    await runner.run_connection(cid)
    assert _inbox_texts(stack, "alice") == []


@ensure_deferred
async def test_mx_fallback_to_second_host(stack: Stack) -> None:
    """Check 39: the first MX refuses connections, the second one gets the message."""
    clock = _clock()
    net = FakeNet(hosts={"mx2.x.test": accept_all})
    cid = _connection(stack)
    enqueue(stack, ["bob@x.test"])
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx1.x.test", "mx2.x.test"]}))
    await runner.run_connection(cid)
    assert net.connects == ["mx1.x.test", "mx2.x.test"]
    assert [s.host for s in net.sent] == ["mx2.x.test"]


@ensure_deferred
async def test_one_connection_per_domain_for_several_messages(stack: Stack) -> None:
    """Messages for one domain share a session; two domains give two transactions."""
    clock = _clock()
    net = FakeNet(hosts={"mx.one.test": accept_all, "mx.two.test": accept_all})
    cid = _connection(stack)
    enqueue(stack, ["a@one.test", "b@two.test"])
    enqueue(stack, ["c@one.test"])
    runner = make_runner(
        stack, net, clock, FakeResolver({"one.test": ["mx.one.test"], "two.test": ["mx.two.test"]})
    )
    await runner.run_connection(cid)
    assert sorted(net.connects) == ["mx.one.test", "mx.two.test"]
    assert sorted(r for s in net.sent for r in s.recipients) == [
        "a@one.test",
        "b@two.test",
        "c@one.test",
    ]


@ensure_deferred
async def test_null_mx_fails_permanently(stack: Stack) -> None:
    """RFC 7505: a null MX domain fails at once (no retries for days)."""
    clock = _clock()
    net = FakeNet()
    cid = _connection(stack)
    qid = enqueue(stack, ["bob@null.test"], sender="")
    failure = DNSFailure("null.test does not accept mail (null MX)", permanent=True)
    runner = make_runner(stack, net, clock, FakeResolver({"null.test": failure}))
    report = await runner.run_connection(cid)
    assert report.failed == 1
    assert states(stack, qid) == {}


@ensure_deferred
async def test_relay_failover_only_when_not_responding(stack: Stack) -> None:
    """Check 33: a refused relay moves on; a relay that answers 550 stops the list."""
    clock = _clock()
    cid = _connection(
        stack, method="relay", relay_servers="relay1.test\nrelay2.test:2525\nrelay3.test"
    )
    net = FakeNet(hosts={"relay2.test": accept_all})
    enqueue(stack, ["bob@x.test"])
    runner = make_runner(stack, net, clock)
    await runner.run_connection(cid)
    assert net.connects == ["relay1.test", "relay2.test"]
    assert [(s.host, s.port) for s in net.sent] == [("relay2.test", 2525)]

    net2 = FakeNet(hosts={"relay1.test": reply_for(550, "5.7.1", "relaying denied")})
    enqueue(stack, ["carol@x.test"], sender="")
    runner2 = make_runner(stack, net2, clock)
    await runner2.run_connection(cid)
    assert net2.connects == ["relay1.test"]


@ensure_deferred
async def test_relay_uses_auth_and_required_starttls_options(stack: Stack) -> None:
    """The relay session gets the sender's credentials, TLS mode and EHLO name."""
    clock = _clock()
    cid = _connection(
        stack,
        method="relay",
        relay_servers="smtp.isp.test:587",
        encryption="starttls",
        auth_required=True,
        username="fred",
        password="pw",
        ehlo_name="mx.test",
    )
    net = FakeNet(hosts={"smtp.isp.test": accept_all})
    enqueue(stack, ["bob@x.test"])
    await make_runner(stack, net, clock).run_connection(cid)
    (sent,) = net.sent
    assert (sent.options.username, sent.options.password) == ("fred", "pw")
    assert sent.options.tls.value == "starttls"
    assert sent.options.helo_name == "mx.test"


@ensure_deferred
async def test_empty_relay_list_sends_nothing(stack: Stack) -> None:
    """Spec check 6: relay mode with no servers leaves the message queued."""
    clock = _clock()
    cid = _connection(stack, method="relay", relay_servers="")
    net = FakeNet()
    qid = enqueue(stack, ["bob@x.test"])
    report = await make_runner(stack, net, clock).run_connection(cid)
    assert net.connects == []
    assert states(stack, qid) == {"bob@x.test": "pending"}
    assert report.text == "No SMTP relay servers configured"


@ensure_deferred
async def test_max_recipients_per_message_splits_transactions(stack: Stack) -> None:
    """Check 36: 100 recipients with a limit of 15 -> 7 transactions, 15 x 6 + 10."""
    clock = _clock()
    cid = _connection(stack, method="relay", relay_servers="relay.test", max_rcpt_msg=15)
    net = FakeNet(hosts={"relay.test": accept_all})
    enqueue(stack, [f"u{i}@x.test" for i in range(100)])
    await make_runner(stack, net, clock).run_connection(cid)
    assert [len(s.recipients) for s in net.sent] == [15] * 6 + [10]


@ensure_deferred
async def test_max_messages_per_session_leaves_the_rest(stack: Stack) -> None:
    """Check 37: two per session with five queued: two go, three wait untouched."""
    clock = _clock()
    cid = _connection(stack, method="relay", relay_servers="relay.test", max_msgs_session=2)
    net = FakeNet(hosts={"relay.test": accept_all})
    ids = [enqueue(stack, [f"u{i}@x.test"]) for i in range(5)]
    await make_runner(stack, net, clock).run_connection(cid)
    assert len(net.sent) == 2
    assert [states(stack, q) for q in ids[2:]] == [{f"u{i}@x.test": "pending"} for i in (2, 3, 4)]


@ensure_deferred
async def test_smaller_first_and_reverse_order(stack: Stack) -> None:
    """Check 38: sizes 30k/10k/20k go 10,20,30 with smaller-first, 30,20,10 reversed."""
    clock = _clock()
    cid = _connection(stack, method="relay", relay_servers="relay.test", smaller_first=True)
    net = FakeNet(hosts={"relay.test": accept_all})
    for size in (30, 10, 20):
        enqueue(stack, [f"s{size}@x.test"], data=b"Subject: x\r\n\r\n" + b"x" * size * 1000)
    await make_runner(stack, net, clock).run_connection(cid)
    assert [s.recipients[0] for s in net.sent] == ["s10@x.test", "s20@x.test", "s30@x.test"]


@ensure_deferred
async def test_domain_filter_skips_recipient_for_another_sender(stack: Stack) -> None:
    """Check 44: skip x@example.com; it stays queued while y@other.org is sent."""
    clock = _clock()
    cid = _connection(
        stack,
        method="relay",
        relay_servers="relay.test",
        domain_filter='skip: to matches "*@example.com"\nattempt: all',
    )
    net = FakeNet(hosts={"relay.test": accept_all})
    qid = enqueue(stack, ["x@example.com", "y@other.org"])
    await make_runner(stack, net, clock).run_connection(cid)
    assert [s.recipients for s in net.sent] == [["y@other.org"]]
    assert states(stack, qid) == {"x@example.com": "pending", "y@other.org": "delivered"}


@ensure_deferred
async def test_give_up_after_max_retry_time_with_one_dsn(stack: Stack) -> None:
    """After the max retry time a deferred recipient fails with 4.4.7 and one DSN."""
    stack.add_user("alice")
    clock = _clock()
    cid = _connection(stack, max_retry_hours=1.0, warn_after_hours=0.0)
    net = FakeNet()
    qid = enqueue(stack, ["bob@down.test"])
    runner = make_runner(stack, net, clock, FakeResolver({"down.test": ["mx.down.test"]}))
    await runner.run_connection(cid)
    assert states(stack, qid) == {"bob@down.test": "deferred"}
    clock.advance(3600)
    await runner.run_connection(cid)
    assert states(stack, qid) == {}
    (bounce,) = _inbox_texts(stack, "alice")
    assert b"Status: 4.4.7" in bounce
    assert b"Action: failed" in bounce


@ensure_deferred
async def test_one_delay_warning_after_warn_time(stack: Stack) -> None:
    """Warn-after: exactly one delay DSN while retries go on."""
    stack.add_user("alice")
    clock = _clock()
    cid = _connection(stack, warn_after_hours=0.5, retry_list="10")
    net = FakeNet()
    qid = enqueue(stack, ["bob@down.test"])
    runner = make_runner(stack, net, clock, FakeResolver({"down.test": ["mx.down.test"]}))
    for _ in range(6):
        await runner.run_connection(cid)
        clock.advance(600)
    assert states(stack, qid) == {"bob@down.test": "deferred"}
    (warning,) = _inbox_texts(stack, "alice")
    assert b"Action: delayed" in warning
    assert b"Will-Retry-Until:" in warning


@ensure_deferred
async def test_lan_forward_ignores_schedule_and_uses_route(stack: Stack) -> None:
    """Check 31: SMTP:addr@user:pass@server:port goes to that server with AUTH, at once."""
    clock = _clock()
    net = FakeNet(hosts={"127.0.0.1": accept_all})
    enqueue(
        stack,
        [
            queue_repo.QueuedRecipient(
                "bob@lan.local", lan_route("127.0.0.1", 2587, "fred", "mypass")
            )
        ],
        kind="lan",
    )
    assert not stack.settings.get_bool("schedule.enabled", True)
    report = await make_runner(stack, net, clock).run_lan()
    (sent,) = net.sent
    assert (sent.host, sent.port, sent.recipients) == ("127.0.0.1", 2587, ["bob@lan.local"])
    assert (sent.options.username, sent.options.password) == ("fred", "mypass")
    assert report.delivered == 1


@ensure_deferred
async def test_leased_entry_is_not_claimed_twice(stack: Stack) -> None:
    """Another holder's live lease keeps the entry from this runner until it expires."""
    clock = _clock()
    net = FakeNet(hosts={"mx.x.test": accept_all})
    cid = _connection(stack)
    qid = enqueue(stack, ["bob@x.test"])
    stack.db.run_sync(leases.acquire, f"queue:{qid}", "other-process", START, 120.0)
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx.x.test"]}))
    await runner.run_connection(cid)
    assert net.sent == []
    clock.advance(121)
    await runner.run_connection(cid)
    assert len(net.sent) == 1


@ensure_deferred
async def test_return_path_if_not_local_and_batv(stack: Stack) -> None:
    """Check 43: a forwarded remote sender goes out as the set address; BATV tags local ones."""
    clock = _clock()
    cid = _connection(
        stack,
        method="relay",
        relay_servers="relay.test",
        rp_mode="if_not_local",
        rp_address="bounce@example.test",
    )
    net = FakeNet(hosts={"relay.test": accept_all})
    enqueue(stack, ["a@x.test"], sender="x@remote.org")
    enqueue(stack, ["b@x.test"], sender="alice@example.test")
    enqueue(stack, ["c@x.test"], sender="")
    stack.put_setting("batv.enabled", True)
    stack.put_setting("batv.secret", "s3cret")
    await make_runner(stack, net, clock).run_connection(cid)
    senders = [s.sender for s in net.sent]
    assert senders[0].startswith("prvs=")
    assert senders[0].endswith("=bounce@example.test")
    assert senders[1].endswith("=alice@example.test")
    assert senders[2] == ""


@ensure_deferred
async def test_command_connection_failure_falls_back(stack: Stack) -> None:
    """A "command" connection whose up command fails records it and, on total failure,
    the fallback Connection runs at once (seed-3 §1.4-1.5)."""
    from twisted.internet import reactor

    from vpop3d.app.queue import QueueRunner

    spare = _connection(stack, method="relay", relay_servers="relay.test")
    dial = stack.db.run_sync(
        lambda conn: connectors.add_connection(
            conn,
            "Dial-up",
            kind="command",
            is_default=False,
            up_command="exit 3",
            fallback_id=spare,
            sender_method="relay",
            sender_relay_servers="other.test",
        )
    )
    net = FakeNet(hosts={"relay.test": accept_all})
    enqueue(stack, ["bob@x.test"], now=reactor.seconds() - 1)
    runner = QueueRunner(
        stack.db,
        stack.blobs,
        stack.settings,
        reactor,
        hostname="mail.example.test",
        connect=net.connect,
    )
    report = await runner.run_connection(dial)
    assert report.delivered == 1
    assert net.connects == ["relay.test"]
    rows = {row["id"]: row for row in stack.db.run_sync(connectors.list_connections)}
    assert rows[dial]["last_result"] == "Connect command failed"
    assert rows[spare]["last_result"] == "Connection successful"


@ensure_deferred
async def test_rate_limit_messages_per_window(stack: Stack) -> None:
    """Check 37: 3 messages per 60 minutes: a 4th waits until the first is 60 minutes old."""
    clock = _clock()
    cid = _connection(
        stack, method="relay", relay_servers="relay.test", rate_msgs=3, rate_msgs_minutes=60
    )
    net = FakeNet(hosts={"relay.test": accept_all})
    ids = [enqueue(stack, [f"u{i}@x.test"]) for i in range(4)]
    runner = make_runner(stack, net, clock)
    await runner.run_connection(cid)
    assert len(net.sent) == 3
    assert states(stack, ids[3]) == {"u3@x.test": "pending"}
    clock.advance(59 * 60)
    await runner.run_connection(cid)
    assert len(net.sent) == 3
    clock.advance(60)
    await runner.run_connection(cid)
    assert len(net.sent) == 4


@ensure_deferred
async def test_notify_success_to_server_without_dsn_gives_relayed_notice(stack: Stack) -> None:
    """RFC 3461 §5.2.2: NOTIFY=SUCCESS and a server without DSN -> a "relayed" report."""
    stack.add_user("alice")
    clock = _clock()
    net = FakeNet(hosts={"mx.x.test": accept_all})
    cid = _connection(stack)
    enqueue(stack, [queue_repo.QueuedRecipient("bob@x.test", notify="SUCCESS,FAILURE")])
    enqueue(stack, ["carol@x.test"])
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx.x.test"]}))
    await runner.run_connection(cid)
    (notice,) = _inbox_texts(stack, "alice")
    assert b"Action: relayed" in notice
    assert b"Final-Recipient: rfc822; bob@x.test" in notice
    assert b"carol@x.test" not in notice


@ensure_deferred
async def test_retry_list_last_gap_repeats(stack: Stack) -> None:
    """Check 42: retry list 1,2 with a 451 each time: attempts at 0, +1, +3, +5 minutes."""
    clock = _clock()
    net = FakeNet(hosts={"mx.x.test": reply_for(451, "4.3.0", "busy")})
    cid = _connection(stack, retry_list="1,2")
    enqueue(stack, ["bob@x.test"])
    runner = make_runner(stack, net, clock, FakeResolver({"x.test": ["mx.x.test"]}))
    attempts: list[int] = []
    for minute in range(7):
        before = len(net.connects)
        await runner.run_connection(cid)
        if len(net.connects) > before:
            attempts.append(minute)
        clock.advance(60)
    assert attempts == [0, 1, 3, 5]


@ensure_deferred
async def test_domain_filter_authsender(stack: Stack) -> None:
    """Check 44: `attempt: authsender = "bob"` sends bob's message, skips carol's."""
    clock = _clock()
    cid = _connection(
        stack,
        method="relay",
        relay_servers="relay.test",
        domain_filter='attempt: authsender = "bob"',
    )
    net = FakeNet(hosts={"relay.test": accept_all})
    enqueue(stack, ["a@x.test"], auth_user="bob")
    carol = enqueue(stack, ["b@x.test"], auth_user="carol")
    await make_runner(stack, net, clock).run_connection(cid)
    assert [s.recipients for s in net.sent] == [["a@x.test"]]
    assert states(stack, carol) == {"b@x.test": "pending"}
