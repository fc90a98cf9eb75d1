"""Outbound over real sockets: the QueueRunner with the real ESMTP client against
aiosmtpd sinks, and direct MX through a twisted.names server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests.app.dns_support import a, mx, serve
from tests.app.queue_support import enqueue, lan_route
from tests.integration.outbound_sink import Sink
from tests.support.stack import Stack
from vpop3d.app.dns import MXResolver
from vpop3d.app.queue import MX_PORT, QueueRunner
from vpop3d.store import connectors
from vpop3d.store import queue as queue_repo

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _runner(stack: Stack, resolver: MXResolver | None = None) -> QueueRunner:
    return QueueRunner(
        stack.db,
        stack.blobs,
        stack.settings,
        reactor,
        hostname="mail.example.test",
        resolver=resolver,
    )


def _now_enqueue(stack: Stack, recipients: list[Any], **kwargs: Any) -> int:
    return enqueue(stack, recipients, now=reactor.seconds() - 1, **kwargs)


@pytest.fixture
def tls_sink(tmp_path: Path) -> Iterator[Sink]:
    sink = Sink(starttls_dir=tmp_path, auth=True).start()
    yield sink
    sink.stop()


@ensure_deferred
async def test_relay_with_starttls_and_auth(stack: Stack, tls_sink: Sink) -> None:
    """Relay mode: STARTTLS (required) then AUTH as fred, then the message, over TCP."""
    cid = stack.db.run_sync(connectors.ensure_default)
    stack.db.run_sync(
        connectors.update_sender,
        cid,
        method="relay",
        relay_servers=f"127.0.0.1:1\n127.0.0.1:{tls_sink.port}",
        encryption="starttls",
        auth_required=True,
        username="fred",
        password="mypass",
    )
    qid = _now_enqueue(stack, ["bob@remote.test", "carol@remote.test"])
    report = await _runner(stack).run_connection(cid)
    assert report.text == "Connection successful"
    (got,) = tls_sink.handler.received
    assert got.tls
    assert got.login == "fred"
    assert got.recipients == ["bob@remote.test", "carol@remote.test"]
    assert b"Subject: test" in got.data
    assert stack.db.run_sync(queue_repo.entry, qid) is None


@ensure_deferred
async def test_required_starttls_missing_keeps_mail_queued(stack: Stack) -> None:
    """Check 34: STARTTLS required, not offered: nothing is sent, the message stays."""
    sink = Sink().start()
    try:
        cid = stack.db.run_sync(connectors.ensure_default)
        stack.db.run_sync(
            connectors.update_sender,
            cid,
            method="relay",
            relay_servers=f"127.0.0.1:{sink.port}",
            encryption="starttls",
        )
        qid = _now_enqueue(stack, ["bob@remote.test"])
        await _runner(stack).run_connection(cid)
        assert sink.handler.received == []
        entry = stack.db.run_sync(queue_repo.entry, qid)
        assert entry is not None
        assert [r.state for r in entry.recipients] == ["deferred"]
        assert "STARTTLS" in entry.recipients[0].last_error
    finally:
        sink.stop()


@ensure_deferred
async def test_direct_mx_preference_and_fallback(stack: Stack) -> None:
    """Direct mode: MX 10 (nothing listening) then MX 20 on 127.0.0.2 gets the mail;
    a domain with only an A record is delivered to that address."""
    sink = Sink("127.0.0.2").start()
    udp, tcp, dns_port = serve(
        reactor,
        "example.test",
        {
            "mail.example.test": [mx(10, "mx1.example.test"), mx(20, "mx2.example.test")],
            "mx1.example.test": [a("127.0.0.1")],
            "mx2.example.test": [a("127.0.0.2")],
            "plain.example.test": [a("127.0.0.2")],
        },
    )
    try:
        stack.put_setting(MX_PORT, sink.port)
        cid = stack.db.run_sync(connectors.ensure_default)
        _now_enqueue(stack, ["bob@mail.example.test", "carol@plain.example.test"])
        resolver = MXResolver(reactor, [("127.0.0.1", dns_port)], timeout=(2,))
        report = await _runner(stack, resolver).run_connection(cid)
        assert report.delivered == 2
        assert sorted(r.recipients[0] for r in sink.handler.received) == [
            "bob@mail.example.test",
            "carol@plain.example.test",
        ]
        assert len(sink.handler.received) == 2  # one transaction per domain
    finally:
        sink.stop()
        udp.stopListening()
        tcp.stopListening()


@ensure_deferred
async def test_lan_forward_with_auth_to_loopback_sink(stack: Stack) -> None:
    """Check 31: the inline LAN target's user:pass@server:port is used for AUTH (no TLS)."""
    sink = Sink(auth=True).start()
    try:
        route = lan_route("127.0.0.1", sink.port, "fred", "mypass")
        enqueue(
            stack,
            [queue_repo.QueuedRecipient("bob@lan.local", route)],
            kind="lan",
            now=reactor.seconds() - 1,
        )
        report = await _runner(stack).run_lan()
        assert report.delivered == 1
        (got,) = sink.handler.received
        assert (got.login, got.recipients) == ("fred", ["bob@lan.local"])
    finally:
        sink.stop()


@ensure_deferred
async def test_three_domains_down_rejecting_accepting(stack: Stack) -> None:
    """One message to a down, a rejecting and an accepting domain (real DNS and sockets):
    exactly one delivery, one DSN naming the rejected recipient, one retry pending."""
    stack.add_user("alice")
    accepting = Sink("127.0.0.2").start()
    rejecting = Sink("127.0.0.4", port=accepting.port)
    rejecting.handler.reject["b@reject.example.test"] = "550 5.1.1 no such user"
    rejecting.start()
    udp, tcp, dns_port = serve(
        reactor,
        "example.test",
        {
            "down.example.test": [mx(10, "mx.down.example.test")],
            "mx.down.example.test": [a("127.0.0.3")],
            "reject.example.test": [mx(10, "mx.reject.example.test")],
            "mx.reject.example.test": [a("127.0.0.4")],
            "ok.example.test": [mx(10, "mx.ok.example.test")],
            "mx.ok.example.test": [a("127.0.0.2")],
        },
    )
    try:
        stack.put_setting(MX_PORT, accepting.port)
        cid = stack.db.run_sync(connectors.ensure_default)
        qid = _now_enqueue(
            stack, ["a@down.example.test", "b@reject.example.test", "c@ok.example.test"]
        )
        resolver = MXResolver(reactor, [("127.0.0.1", dns_port)], timeout=(2,))
        report = await _runner(stack, resolver).run_connection(cid)
        assert [r.recipients for r in accepting.handler.received] == [["c@ok.example.test"]]
        assert rejecting.handler.received == []
        assert (report.delivered, report.failed, report.deferred) == (1, 1, 1)
        entry = stack.db.run_sync(queue_repo.entry, qid)
        assert entry is not None
        assert {r.address: r.state for r in entry.recipients} == {
            "a@down.example.test": "deferred",
            "b@reject.example.test": "failed",
            "c@ok.example.test": "delivered",
        }
        assert report.notices == 1
    finally:
        accepting.stop()
        rejecting.stop()
        udp.stopListening()
        tcp.stopListening()


@ensure_deferred
async def test_relay_with_implicit_tls(stack: Stack) -> None:
    """Session encryption "SSL": TLS from the first byte (RFC 8314), then SMTP."""
    sink = Sink(implicit_tls=True).start()
    try:
        cid = stack.db.run_sync(connectors.ensure_default)
        stack.db.run_sync(
            connectors.update_sender,
            cid,
            method="relay",
            relay_servers=f"127.0.0.1:{sink.port}",
            encryption="ssl",
        )
        _now_enqueue(stack, ["bob@remote.test"])
        report = await _runner(stack).run_connection(cid)
        assert report.delivered == 1
        (got,) = sink.handler.received
        assert got.recipients == ["bob@remote.test"]
    finally:
        sink.stop()
