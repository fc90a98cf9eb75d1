"""The open-relay battery over a real socket (issue 4): no trick relays, local mail flows.

One in-process SMTP listener built by the server's own SMTP builder on the test
database; the loopback client is treated as an Internet host (its access row
blocks relaying), and stdlib smtplib sends each trick as a raw RCPT.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort

from tests.support.stack import Stack
from vpop3d.config import ListenerSpec
from vpop3d.store import queue
from vpop3d.wiring_smtp import build_smtp_factory

pytestmark = pytest.mark.network

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

TRICKS = [
    "<x@remote.test>",
    "<@example.test:x@remote.test>",
    "<@example.test,@relay.test:x@remote.test>",
    "<x%remote.test@example.test>",
    "<remote.test!x@example.test>",
    '<"x@remote.test"@example.test>',
    '<"x%remote.test"@example.test>',
    "<x@[192.0.2.1]>",
    "<x@[IPv6:2001:db8::1]>",
    "<x@[127.0.0.1]>",
    "<x@sub.example.test>",
    "<x@example.test.remote.test>",
    "<x@remote.test@example.test>",
    '<"x@remote.test">',
    "<x@example.test%remote.test>",
    "<postmaster@remote.test>",
    "<X@REMOTE.TEST>",
]


async def listen(stack: Stack) -> IListeningPort:
    context = stack.server_context(reactor, "mail.example.test")
    spec = ListenerSpec(
        name="smtp",
        protocol="smtp",
        role="smtp",
        port=0,
        interface="127.0.0.1",
        implicit_tls=False,
        starttls=cast(Any, "off"),
        require_auth=False,
    )
    factory = build_smtp_factory(cast(Any, context), spec)
    port: IListeningPort = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        factory
    )
    return port


@ensure_deferred
async def test_open_relay_battery_over_socket(stack: Stack) -> None:
    """Every relay trick from an Internet client is refused; local delivery still works."""
    stack.add_user("fred")
    # Loopback is a "Local Net"; make it an Internet host for this test.
    stack.put_setting(
        "smtp.access_rules", [{"allow": False, "type": "network", "address": "127.0.0.1"}]
    )
    port = await listen(stack)
    number: int = port.getHost().port  # type: ignore[attr-defined]  # IPv4Address

    def run() -> tuple[dict[str, int], int]:
        codes: dict[str, int] = {}
        with smtplib.SMTP("127.0.0.1", number, timeout=20) as client:
            client.ehlo("client.remote.test")
            for trick in TRICKS:
                client.docmd("RSET")
                assert client.docmd("MAIL FROM:<bob@remote.test>")[0] == 250
                codes[trick] = client.docmd(f"RCPT TO:{trick}")[0]
            client.docmd("RSET")
            client.docmd("MAIL FROM:<bob@remote.test>")
            local = client.docmd("RCPT TO:<fred@example.test>")[0]
        return codes, local

    try:
        codes, local = await threads.deferToThread(run)
    finally:
        stopping = port.stopListening()
        if stopping is not None:
            await stopping
    accepted = {trick: code for trick, code in codes.items() if code < 300}
    assert accepted == {}, accepted
    assert all(400 <= code < 600 for code in codes.values())
    assert local == 250
    assert stack.db.read_sync(queue.entries) == []
