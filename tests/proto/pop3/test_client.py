"""POP3 client transcripts over StringTransport (RFC 1939, RFC 2449, RFC 5034)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Coroutine
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from vpop3d.proto.pop3.client import (
    MultiLineReader,
    POP3Client,
    POP3ConnectionLost,
    POP3ServerError,
    POP3Timeout,
    greeting_timestamp,
    parse_listing,
)

# RFC 1939 §7 example greeting and APOP digest.
RFC_GREETING = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"


def connected(greeting: bytes = b"+OK ready\r\n") -> tuple[POP3Client, StringTransport, Clock]:
    clock = Clock()
    client = POP3Client(clock, timeout=30)
    transport = StringTransport()
    client.makeConnection(transport)
    client.dataReceived(greeting)
    return client, transport, clock


def start(coro: Coroutine[Any, Any, Any]) -> Deferred[Any]:
    return Deferred.fromCoroutine(coro)


def sent(transport: StringTransport) -> bytes:
    data = transport.value()
    transport.clear()
    return bytes(data)


def result(deferred: Deferred[Any]) -> Any:
    out: list[Any] = []
    deferred.addBoth(out.append)
    assert out, "deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def test_greeting_timestamp_and_apop_digest() -> None:
    """The APOP command uses the greeting's timestamp (RFC 1939 §7 example digest)."""
    client, transport, _ = connected(RFC_GREETING)
    assert client.timestamp == b"<1896.697170952@dbc.mtview.ca.us>"
    done = start(client.login_apop("mrose", "tanstaaf"))
    assert sent(transport) == b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
    client.dataReceived(b"+OK maildrop has 1 message (369 octets)\r\n")
    result(done)


def test_user_pass_error_masks_password() -> None:
    """A refused PASS raises with the manual's text and no password in it."""
    client, transport, _ = connected()
    done = start(client.login_user("fred", "hunter2"))
    assert sent(transport) == b"USER fred\r\n"
    client.dataReceived(b"+OK\r\n")
    assert sent(transport) == b"PASS hunter2\r\n"
    client.dataReceived(b"-ERR authorization failed\r\n")
    with pytest.raises(POP3ServerError) as caught:
        result(done)
    assert (
        str(caught.value) == 'Error from remote server on "PASS *****" -> -ERR authorization failed'
    )


def test_uidl_list_and_retr_are_dot_unstuffed() -> None:
    """UIDL and LIST parse; RETR streams lines with the leading dot removed."""
    client, transport, _ = connected()
    uidl = start(client.uidl())
    assert sent(transport) == b"UIDL\r\n"
    client.dataReceived(b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n")
    assert result(uidl) == [(1, "whqtswO00WBw418f9t5JxYwZ"), (2, "QhdPYR:00WBw1Ph7x7")]
    sizes = start(client.list_sizes())
    client.dataReceived(b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n")
    sent(transport)
    assert result(sizes) == {1: 120, 2: 200}
    chunks: list[bytes] = []
    retr = start(client.retr(1, chunks.append))
    assert sent(transport) == b"RETR 1\r\n"
    client.dataReceived(b"+OK 120 octets\r\nSubject: x\r\n\r\n..dot\r\n")
    client.dataReceived(b"plain\r\n.\r\n")
    result(retr)
    assert b"".join(chunks) == b"Subject: x\r\n\r\n.dot\r\nplain\r\n"


def test_capa_err_means_no_capabilities_and_top() -> None:
    """CAPA -ERR gives []; TOP n 0 returns the header block."""
    client, transport, _ = connected()
    capa = start(client.capa())
    client.dataReceived(b"-ERR unknown command\r\n")
    assert result(capa) == []
    sent(transport)
    top = start(client.top(3, 0))
    assert sent(transport) == b"TOP 3 0\r\n"
    client.dataReceived(b"+OK\r\nTo: a@b.test\r\n\r\n.\r\n")
    assert result(top) == b"To: a@b.test\r\n\r\n"


def test_cram_md5_exchange() -> None:
    """AUTH CRAM-MD5 answers the challenge with user and HMAC-MD5 hex (RFC 2195)."""
    client, transport, _ = connected()
    done = start(client.login_cram_md5("tim", "tanstaaftanstaaf"))
    assert sent(transport) == b"AUTH CRAM-MD5\r\n"
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    client.dataReceived(b"+ " + base64.b64encode(challenge) + b"\r\n")
    answer = base64.b64decode(sent(transport).strip())
    digest = hmac.new(b"tanstaaftanstaaf", challenge, hashlib.md5).hexdigest()
    assert answer == b"tim " + digest.encode()
    client.dataReceived(b"+OK\r\n")
    result(done)


def test_timeout_aborts_and_raises() -> None:
    """No reply within the timeout fails the command with POP3Timeout."""
    client, _transport, clock = connected()
    done = start(client.stat())
    clock.advance(31)
    with pytest.raises(POP3Timeout):
        result(done)


def test_connection_lost_mid_retr_raises() -> None:
    """A drop in the middle of RETR fails it: the caller must not store the partial body."""
    client, _transport, _ = connected()
    chunks: list[bytes] = []
    done = start(client.retr(1, chunks.append))
    client.dataReceived(b"+OK\r\nSubject: partial\r\n")
    client.connectionLost(Failure(ConnectionError("reset")))
    with pytest.raises(POP3ConnectionLost):
        result(done)


def test_pure_helpers() -> None:
    """Listing lines, timestamps and the terminator are parsed per RFC 1939."""
    assert parse_listing([b"1 abc", b"junk", b"2 def"]) == [(1, "abc"), (2, "def")]
    assert greeting_timestamp(b"+OK hello") is None
    out: list[bytes] = []
    reader = MultiLineReader(out.append)
    assert reader.feed(b"..x")
    assert not reader.feed(b".")
    assert out == [b".x\r\n"]
    assert reader.done
