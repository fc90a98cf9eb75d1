"""SMTP smuggling defence: only CRLF.CRLF ends DATA, and bare CR/LF refuse the message.

Policy: a body containing a bare LF or a bare CR anywhere is read to its real
CRLF.CRLF end and then refused with ``554 5.6.0``; nothing of it is delivered and
bytes after a fake end are never executed as commands.
"""

from __future__ import annotations

import pytest

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory

REFUSED = "554 5.6.0 Message refused: bare CR or LF in message data (RFC 5321 §2.3.8)"
SMUGGLED = b"MAIL FROM:<admin@a.test>\r\nRCPT TO:<kate@a.test>\r\nDATA\r\nevil\r\n"


def open_data(delivery: FakeDelivery) -> Transcript:
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    assert t.send("DATA") == ["354 End data with <CR><LF>.<CR><LF>"]
    return t


@pytest.mark.parametrize(
    "fake_end",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"],
)
def test_fake_end_of_data_never_ends_the_message(fake_end: bytes):
    """A fake end followed by smuggled commands is body, refused at the real end."""
    delivery = FakeDelivery()
    t = open_data(delivery)
    assert t.raw(b"Subject: x\r\n\r\nbody" + fake_end + SMUGGLED) == []
    assert t.raw(b".\r\n") == [REFUSED]
    assert delivery.accepted == []
    assert delivery.spools[0].discarded
    # The session is usable again; nothing smuggled was executed.
    assert delivery.senders == ["a@b.test"]
    assert t.send("RCPT TO:<fred@a.test>") == ["503 5.5.1 Need MAIL command"]


def test_bare_lf_inside_a_line_is_refused():
    """A lone LF in the middle of a body is refused after the end."""
    delivery = FakeDelivery()
    t = open_data(delivery)
    assert t.raw(b"a\nb\r\n.\r\n") == [REFUSED]
    assert delivery.accepted == []


def test_bare_cr_inside_a_line_is_refused():
    """A lone CR in the middle of a body is refused after the end."""
    delivery = FakeDelivery()
    t = open_data(delivery)
    assert t.raw(b"a\rb\r\n.\r\n") == [REFUSED]


def test_clean_message_with_dots_is_accepted():
    """Ordinary dot lines are unstuffed and do not trigger the defence."""
    delivery = FakeDelivery()
    t = open_data(delivery)
    assert t.raw(b"a\r\n..\r\n.b\r\n.\r\n") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"a\r\n.\r\nb\r\n"


def test_split_crlf_at_packet_boundary_is_not_bare():
    """CR and LF arriving in different packets still form one CRLF."""
    delivery = FakeDelivery()
    t = open_data(delivery)
    assert t.raw(b"line\r") == []
    assert t.raw(b"\n.\r") == []
    assert t.raw(b"\n") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"line\r\n"
