"""Outbound ESMTP client transcripts over StringTransport (RFC 5321, 2920, 3207, 4954)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from vpop3d.core.reply import Reply
from vpop3d.proto.smtp.client import (
    ClientOptions,
    MessageResult,
    OutboundMessage,
    OutboundRecipient,
    SMTPClient,
    SMTPClientProtocol,
    SMTPSessionError,
    TLSMode,
    dot_stuff,
    xtext,
)

T = TypeVar("T")


class TLSTransport(StringTransport):
    """A StringTransport that records startTLS."""

    def __init__(self) -> None:
        super().__init__()
        self.tls: object = None

    def startTLS(self, ctx: object) -> None:  # noqa: N802  Twisted interface name
        self.tls = ctx


class Harness:
    def __init__(self, options: ClientOptions | None = None) -> None:
        self.clock = Clock()
        self.proto = SMTPClientProtocol(self.clock)
        self.transport = TLSTransport()
        self.proto.makeConnection(self.transport)
        self.client = SMTPClient(
            self.proto, options or ClientOptions(helo_name="me.test"), "mx.remote.test"
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> Deferred[T]:
        return Deferred.fromCoroutine(coro)

    def server(self, *lines: str) -> None:
        self.proto.dataReceived("".join(line + "\r\n" for line in lines).encode())

    def sent(self) -> list[str]:
        lines = self.transport.value().decode().split("\r\n")
        self.transport.clear()
        return [line for line in lines if line]


def result_of(d: Deferred[T]) -> T:
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    if isinstance(box[0], Exception) or hasattr(box[0], "raiseException"):
        box[0].raiseException()
    return box[0]  # type: ignore[no-any-return]


MSG = OutboundMessage(
    sender="alice@example.test",
    recipients=(OutboundRecipient("bob@remote.test"), OutboundRecipient("carol@remote.test")),
    data=b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n",
)


def test_ehlo_then_pipelined_transaction() -> None:
    """With PIPELINING, MAIL, RCPTs and DATA go in one write; replies map per recipient."""
    h = Harness(ClientOptions(helo_name="me.test", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220 mx.remote.test ESMTP")
    assert h.sent() == ["EHLO me.test"]
    h.server("250-mx.remote.test", "250-PIPELINING", "250 SIZE 1000000")
    result_of(start)
    send = h.run(h.client.send(MSG))
    assert h.sent() == [
        f"MAIL FROM:<alice@example.test> SIZE={len(MSG.data)}",
        "RCPT TO:<bob@remote.test>",
        "RCPT TO:<carol@remote.test>",
        "DATA",
    ]
    h.server("250 2.1.0 ok", "250 2.1.5 ok", "550 5.1.1 no such user", "354 go")
    assert h.transport.value() == b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n"
    h.transport.clear()
    h.server("250 2.0.0 queued")
    result: MessageResult = result_of(send)
    assert result.recipients == (
        ("bob@remote.test", Reply(250, "2.0.0", "queued")),
        ("carol@remote.test", Reply(550, "5.1.1", "no such user")),
    )
    assert result.delivered() == ["bob@remote.test"]


def test_helo_fallback_when_ehlo_refused() -> None:
    """RFC 5321 §3.2: a 500 to EHLO makes the client say HELO and use no extensions."""
    h = Harness(ClientOptions(helo_name="me.test", tls=TLSMode.OPTIONAL))
    start = h.run(h.client.start())
    h.server("220 old server")
    h.server("500 what?")
    assert h.sent() == ["EHLO me.test", "HELO me.test"]
    h.server("250 hello")
    result_of(start)
    assert not h.client.esmtp
    send = h.run(h.client.send(MSG))
    assert h.sent() == ["MAIL FROM:<alice@example.test>"]
    h.server("250 ok")
    assert h.sent() == ["RCPT TO:<bob@remote.test>"]
    h.server("451 try later")
    assert h.sent() == ["RCPT TO:<carol@remote.test>"]
    h.server("250 ok")
    assert h.sent() == ["DATA"]
    h.server("354 go")
    h.transport.clear()
    h.server("250 done")
    result = result_of(send)
    assert [r.code for _, r in result.recipients] == [451, 250]


def test_starttls_required_but_not_offered_sends_nothing() -> None:
    """seed-3 §10: STARTTLS required and not advertised -> QUIT, no MAIL FROM ever."""
    h = Harness(ClientOptions(helo_name="me.test", tls=TLSMode.REQUIRED, tls_creator=str))
    start = h.run(h.client.start())
    h.server("220 hi")
    h.server("250-hi", "250 PIPELINING")
    assert h.sent() == ["EHLO me.test", "QUIT"]
    h.server("221 bye")
    with pytest.raises(SMTPSessionError) as info:
        result_of(start)
    assert info.value.reply.is_transient


def test_starttls_upgrade_then_ehlo_again_and_auth_after_tls() -> None:
    """RFC 3207 §4.2: after 220 to STARTTLS, TLS starts, EHLO again, then AUTH (CRAM-MD5)."""
    options = ClientOptions(
        helo_name="me.test",
        tls=TLSMode.REQUIRED,
        tls_creator=lambda name: ("ctx", name),
        username="fred",
        password="mypass",
    )
    h = Harness(options)
    start = h.run(h.client.start())
    h.server("220 hi")
    h.server("250-hi", "250-STARTTLS", "250 AUTH PLAIN LOGIN CRAM-MD5")
    assert h.sent() == ["EHLO me.test", "STARTTLS"]
    h.server("220 go ahead")
    assert h.transport.tls == ("ctx", "mx.remote.test")
    assert h.sent() == ["EHLO me.test"]
    h.server("250-hi", "250 AUTH PLAIN LOGIN CRAM-MD5")
    assert h.sent() == ["AUTH CRAM-MD5"]
    challenge = b"<1896.697170952@postoffice.example.net>"
    h.server("334 " + base64.b64encode(challenge).decode())
    (answer,) = h.sent()
    digest = hmac.new(b"mypass", challenge, "md5").hexdigest()
    assert base64.b64decode(answer) == f"fred {digest}".encode()
    h.server("235 2.7.0 ok")
    result_of(start)
    assert h.client.secure


def test_auth_plain_and_login() -> None:
    """AUTH PLAIN sends authzid NUL user NUL pass; LOGIN answers two 334 prompts."""
    h = Harness(
        ClientOptions(
            helo_name="me", tls=TLSMode.NONE, username="u", password="p", auth_method="plain"
        )
    )
    start = h.run(h.client.start())
    h.server("220 hi", "250-hi", "250 AUTH PLAIN")
    assert h.sent()[-1] == "AUTH PLAIN " + base64.b64encode(b"\x00u\x00p").decode()
    h.server("235 ok")
    result_of(start)

    h = Harness(
        ClientOptions(
            helo_name="me", tls=TLSMode.NONE, username="u", password="p", auth_method="login"
        )
    )
    start = h.run(h.client.start())
    h.server("220 hi", "250-hi", "250 AUTH LOGIN")
    assert h.sent()[-1] == "AUTH LOGIN"
    h.server("334 VXNlcm5hbWU6")
    assert h.sent() == [base64.b64encode(b"u").decode()]
    h.server("334 UGFzc3dvcmQ6")
    assert h.sent() == [base64.b64encode(b"p").decode()]
    h.server("535 5.7.8 bad")
    with pytest.raises(SMTPSessionError) as info:
        result_of(start)
    assert info.value.reply.is_transient  # a config problem keeps mail queued


def test_dsn_and_8bitmime_parameters_when_offered() -> None:
    """RFC 3461/6152: NOTIFY, ORCPT (xtext), RET, ENVID and BODY are passed on when offered."""
    h = Harness(ClientOptions(helo_name="me", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220 hi", "250-hi", "250-DSN", "250 8BITMIME")
    result_of(start)
    h.sent()
    message = OutboundMessage(
        sender="a@x.test",
        recipients=(OutboundRecipient("b@y.test", "FAILURE,DELAY", "rfc822;b+1@y.test"),),
        data=b"x\r\n",
        envid="id=1",
        ret="HDRS",
        body_type="8BITMIME",
    )
    h.run(h.client.send(message))
    assert h.sent() == ["MAIL FROM:<a@x.test> BODY=8BITMIME RET=HDRS ENVID=id+3D1"]
    h.server("250 ok")
    assert h.sent() == ["RCPT TO:<b@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2B1@y.test"]


def test_smtputf8_message_to_server_without_it_fails_permanently() -> None:
    """RFC 6531 §3.2: no SMTPUTF8 at the server -> every recipient refused with 5.6.7."""
    h = Harness(ClientOptions(helo_name="me", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220 hi", "250 hi")
    result_of(start)
    h.sent()
    message = OutboundMessage("a@x.test", (OutboundRecipient("b@y.test"),), b"x", smtputf8=True)
    result = result_of(h.run(h.client.send(message)))
    assert result.recipients[0][1].enhanced == "5.6.7"
    assert h.sent() == []


def test_reply_timeout_drops_connection() -> None:
    """RFC 5321 §4.5.3.2: no reply to MAIL within its timeout -> session error, abort."""
    h = Harness(ClientOptions(helo_name="me", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220 hi", "250 hi")
    result_of(start)
    send = h.run(h.client.send(MSG))
    h.clock.advance(299)
    assert not send.called
    h.clock.advance(2)
    with pytest.raises(SMTPSessionError):
        result_of(send)


def test_bad_banner_means_not_responding() -> None:
    """A 554 greeting is not a responding server: relay failover may try the next one."""
    h = Harness()
    start = h.run(h.client.start())
    h.server("554 go away")
    with pytest.raises(SMTPSessionError) as info:
        result_of(start)
    assert not info.value.responded


def test_multiline_reply_and_enhanced_code() -> None:
    """Continuation lines join into one reply; the enhanced code is parsed from line one."""
    h = Harness(ClientOptions(helo_name="me", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220-first", "220 second")
    h.server("250 hi")
    result_of(start)
    send = h.run(h.client.send(MSG))
    h.server("550-5.7.1 policy", "550 5.7.1 refused")
    h.server("250 reset")
    result = result_of(send)
    assert result.recipients[0][1] == Reply(550, "5.7.1", "policy\n5.7.1 refused")


def test_dot_stuffing_and_xtext() -> None:
    """RFC 5321 §4.5.2 transparency and RFC 3461 §4 xtext."""
    assert dot_stuff(b".a\r\n.b\nc") == b"..a\r\n..b\r\nc\r\n.\r\n"
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"


def test_message_over_declared_size_is_refused_without_sending() -> None:
    """RFC 1870 §6: a message larger than the server's SIZE fails with 552 5.3.4 locally."""
    h = Harness(ClientOptions(helo_name="me", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220 hi", "250-hi", "250 SIZE 10")
    result_of(start)
    h.sent()
    result = result_of(h.run(h.client.send(MSG)))
    assert {reply.enhanced for _, reply in result.recipients} == {"5.3.4"}
    assert h.sent() == []


def test_connection_lost_mid_transaction_is_a_session_error() -> None:
    """A dropped connection after DATA's body gives SMTPSessionError (retry later)."""
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    h = Harness(ClientOptions(helo_name="me", tls=TLSMode.NONE))
    start = h.run(h.client.start())
    h.server("220 hi", "250-hi", "250 PIPELINING")
    result_of(start)
    send = h.run(h.client.send(MSG))
    h.server("250 ok", "250 ok", "250 ok", "354 go")
    h.proto.connectionLost(Failure(ConnectionLost()))
    with pytest.raises(SMTPSessionError) as info:
        result_of(send)
    assert info.value.reply.is_transient
