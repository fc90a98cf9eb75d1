"""ODMR (ATRN) against a scripted ISP peer on loopback (RFC 2645, seed-1 §11.2):
EHLO, AUTH, ATRN, then the same TCP connection turns around and our real SMTP
server (built by ``vpop3d.wiring_smtp``) receives the ISP's mail."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet import protocol, reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort

from tests.integration.test_pop3_loopback import inbox_ids, make_context
from tests.support.stack import Stack
from vpop3d.app.odmr import ATRNError, run_atrn
from vpop3d.config import ListenerSpec
from vpop3d.wiring_smtp import build_smtp_factory

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


class ScriptedISP(protocol.Protocol):
    """Plays the ISP side of seed-1 §11.2's ATRN transcript, then sends one message."""

    def __init__(self, log: list[str], done: Deferred[None], *, mail_waiting: bool) -> None:
        self.log = log
        self.done = done
        self.mail_waiting = mail_waiting
        self.buffer = b""
        self.reversed = False
        self.script = [
            b"EHLO mx.isp.test\r\n",
            b"MAIL FROM:<sender@remote.test>\r\n",
            b"RCPT TO:<fred@example.test>\r\n",
            b"DATA\r\n",
            b"Subject: via ATRN\r\n\r\nhello\r\n.\r\n",
            b"QUIT\r\n",
        ]

    def connectionMade(self) -> None:
        self.transport.write(b"220 myisp.test ODMR ready\r\n")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            text = line.decode()
            self.log.append(("S< " if self.reversed else "C> ") + text)
            self.answer(text)

    def write(self, line: bytes) -> None:
        self.transport.write(line)  # type: ignore[union-attr]

    def answer(self, text: str) -> None:
        if self.reversed:
            if text.startswith(("220", "250", "354")) and self.script:
                if text.startswith("250-"):
                    return
                self.write(self.script.pop(0))
            return
        if text.startswith("EHLO"):
            self.write(b"250-myisp.test\r\n250-AUTH PLAIN\r\n250 ATRN\r\n")
        elif text.startswith("AUTH PLAIN "):
            user = base64.b64decode(text[11:]).split(b"\0")
            self.write(b"235 OK\r\n" if user[1:] == [b"odmr", b"pw"] else b"535 no\r\n")
        elif text.startswith("ATRN "):
            if not self.mail_waiting:
                self.write(b"453 You have no mail\r\n")
                return
            self.write(b"250 OK now reversing the connection\r\n")
            self.reversed = True
        elif text == "QUIT":
            self.write(b"221 bye\r\n")
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(None)


async def scripted(mail_waiting: bool) -> tuple[IListeningPort, list[str], Deferred[None]]:
    log: list[str] = []
    done: Deferred[None] = Deferred()
    factory = protocol.Factory.forProtocol(
        lambda: ScriptedISP(log, done, mail_waiting=mail_waiting)
    )
    port: IListeningPort = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        factory
    )
    return port, log, done


def smtp_factory(stack: Stack) -> Any:
    context, _ = make_context(stack)
    spec = ListenerSpec("odmr", "smtp", "smtp", 0, "", False, cast(Any, "off"), False)
    return build_smtp_factory(cast(Any, context), spec)


@ensure_deferred
async def test_atrn_turns_the_connection_around_and_delivers(stack: Stack) -> None:
    """AUTH, ATRN domains, then our SMTP server greets and stores the ISP's message."""
    fred = stack.add_user("fred")
    port, log, done = await scripted(mail_waiting=True)
    try:
        number: int = port.getHost().port  # type: ignore[attr-defined]
        text = await run_atrn(
            reactor,
            f"127.0.0.1:{number}",
            helo="client.example.test",
            username="odmr",
            password="pw",
            domains="example.test; example.org",
            smtp_factory=smtp_factory(stack),
            timeout=10,
        )
        await done
    finally:
        stopping = port.stopListening()
        if stopping is not None:
            await stopping
    assert text.startswith("OK: ATRN example.test,example.org")
    assert log[:3] == [
        "C> EHLO client.example.test",
        log[1],
        "C> ATRN example.test,example.org",
    ]
    assert log[1].startswith("C> AUTH PLAIN ")
    assert log[3].startswith("S< 220 ")  # our greeting after the swap
    assert len(inbox_ids(stack, fred)) == 1


@ensure_deferred
async def test_atrn_no_mail_waiting_quits(stack: Stack) -> None:
    """453 'no mail' is success without a turn-around: QUIT (RFC 2645 §5.2.3)."""
    port, log, _done = await scripted(mail_waiting=False)
    try:
        number: int = port.getHost().port  # type: ignore[attr-defined]
        text = await run_atrn(
            reactor, f"127.0.0.1:{number}", helo="c.test", username="odmr", password="pw",
            domains="example.test", smtp_factory=smtp_factory(stack), timeout=10,
        )  # fmt: skip
    finally:
        stopping = port.stopListening()
        if stopping is not None:
            await stopping
    assert text.startswith("OK: no mail waiting")
    assert log[-1] == "C> QUIT"


@ensure_deferred
async def test_atrn_auth_refused_is_the_last_result(stack: Stack) -> None:
    """A refused AUTH stops before ATRN, password masked."""
    port, log, _done = await scripted(mail_waiting=True)
    try:
        number: int = port.getHost().port  # type: ignore[attr-defined]
        with pytest.raises(ATRNError, match=r'"AUTH \*\*\*\*\*" -> 535'):
            await run_atrn(
                reactor, f"127.0.0.1:{number}", helo="c.test", username="odmr", password="bad",
                domains="example.test", smtp_factory=smtp_factory(stack), timeout=10,
            )  # fmt: skip
    finally:
        stopping = port.stopListening()
        if stopping is not None:
            await stopping
    assert not any("ATRN" in line for line in log if line.startswith("C> ATRN"))


class ScriptedETRN(protocol.Protocol):
    """The ISP side of seed-1 §11.2's ETRN session 1."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.buffer = b""

    def connectionMade(self) -> None:
        self.transport.write(b"220 myisp.test ESMTP\r\n")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            text = line.decode()
            self.log.append(text)
            reply = {
                "EHLO": b"250-myisp.test\r\n250 ETRN\r\n",
                "ETRN": b"250 OK queuing started\r\n",
                "QUIT": b"250 Goodbye\r\n",
            }[text.split()[0]]
            self.transport.write(reply)  # type: ignore[union-attr]


@ensure_deferred
async def test_smtp_feed_collector_sends_etrn(stack: Stack) -> None:
    """An Incoming SMTP Mail Feed collector with ETRN runs session 1 of the manual's
    transcript and records the server's answer as its last result."""
    from vpop3d.app.collectors import CollectorRunner
    from vpop3d.store import collectors as repo

    log: list[str] = []
    factory = protocol.Factory.forProtocol(lambda: ScriptedETRN(log))
    port: IListeningPort = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        factory
    )
    try:
        number: int = port.getHost().port  # type: ignore[attr-defined]
        runner = CollectorRunner(
            stack.db, stack.blobs, cast(Any, None), cast(Any, None), stack.bus, stack.settings,
            reactor=reactor, hostname="client.example.test", timeout=10.0,
        )  # fmt: skip
        collector = stack.db.run_sync(
            repo.add, "feed", kind="smtp-feed", etrn_server=f"127.0.0.1:{number}",
            etrn_argument="mydomain", wait_seconds=0,
        )  # fmt: skip
        result = await runner.run(collector)
    finally:
        stopping = port.stopListening()
        if stopping is not None:
            await stopping
    assert result.ok, result.text
    assert log == ["EHLO client.example.test", "ETRN mydomain", "QUIT"]
    row = stack.db.read_sync(repo.by_id, collector)
    assert row is not None
    assert row["last_result"] == "OK: ETRN accepted: 250 OK queuing started"
