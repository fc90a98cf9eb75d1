"""Limits: message size, recipients, errors, line length, timeouts, connections."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory

TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"


def ready(delivery: FakeDelivery | None = None, **config: Any) -> Transcript:
    t = Transcript(make_factory(delivery or FakeDelivery(), **config))
    t.send("EHLO c")
    return t


def test_size_declared_at_mail_over_limit():
    """MAIL with SIZE= above the limit is refused at once (RFC 1870 §6.1)."""
    t = ready()
    assert t.send("MAIL FROM:<a@b.test> SIZE=10001") == [TOO_BIG]
    assert t.send("MAIL FROM:<a@b.test> SIZE=10000") == ["250 2.1.0 OK"]


def test_size_exceeded_during_data():
    """A body over the limit is read to its end, refused 552 5.3.4, and dropped."""
    delivery = FakeDelivery(max_size=100)
    t = ready(delivery)
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    assert t.raw(b"x" * 60 + b"\r\n" + b"y" * 60 + b"\r\n") == []
    assert t.raw(b".\r\n") == [TOO_BIG]
    assert delivery.accepted == []
    assert delivery.spools[0].discarded
    assert t.send("NOOP") == ["250 2.0.0 OK"]


def test_no_size_limit_advertises_bare_size():
    """With no limit (0) EHLO says SIZE without a number."""
    t = Transcript(make_factory(FakeDelivery(max_size=0)))
    assert "250-SIZE" in t.send("EHLO c")


def test_max_recipients():
    """Recipients past the per-message limit get 452 4.5.3 (RFC 5321 §4.5.3.1.10)."""
    delivery = FakeDelivery()
    delivery.local |= {f"u{n}@a.test" for n in range(5)}
    t = ready(delivery, max_recipients=2)
    t.send("MAIL FROM:<a@b.test>")
    assert t.send("RCPT TO:<u0@a.test>") == ["250 2.1.5 OK"]
    assert t.send("RCPT TO:<u1@a.test>") == ["250 2.1.5 OK"]
    assert t.send("RCPT TO:<u2@a.test>") == ["452 4.5.3 Too many recipients"]


def test_max_errors_disconnects():
    """After max_errors 5xx replies the server says 421 and closes."""
    t = ready(max_errors=3)
    t.send("BOGUS")
    t.send("BOGUS")
    assert t.send("BOGUS") == [
        "500 5.5.2 Command unrecognized",
        "421 4.7.0 mail.a.test Too many errors, closing connection",
    ]
    assert t.closed
    assert t.send("NOOP") == []


def test_command_line_too_long():
    """A command line over 512 octets gets 500 5.5.2 Line too long."""
    t = ready()
    assert t.send("NOOP " + "x" * 600) == ["500 5.5.2 Line too long"]
    assert t.send("NOOP") == ["250 2.0.0 OK"]


def test_huge_line_is_dropped_without_buffering_it_all():
    """A line beyond the framer limit is discarded up to its LF, then refused once."""
    t = ready()
    assert t.raw(b"A" * 20000) == []
    assert t.raw(b"B" * 20000) == []
    assert t.raw(b"\r\nNOOP\r\n") == ["500 5.5.2 Line too long", "250 2.0.0 OK"]


def test_data_line_over_1000_octets_is_refused():
    """A text line over 1000 octets (RFC 5321 §4.5.3.1.6) refuses the message."""
    delivery = FakeDelivery(max_size=0)
    t = ready(delivery)
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    assert t.raw(b"z" * 1200 + b"\r\n.\r\n") == ["554 5.6.0 Message refused: line too long"]


def test_data_line_limit_can_be_lifted():
    """max_line_length=0 (the manual's default 'no limit') accepts long lines."""
    delivery = FakeDelivery(max_size=0)
    t = ready(delivery, max_line_length=0)
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    assert t.raw(b"z" * 100_000 + b"\r\n.\r\n") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"z" * 100_000 + b"\r\n"


def test_command_timeout():
    """Idle past the command timeout: 421 4.4.2 and disconnect."""
    clock = Clock()
    t = Transcript(make_factory(FakeDelivery(), clock=clock))
    clock.advance(299)
    assert t.send("EHLO c")[0].startswith("250-")
    clock.advance(299)
    assert not t.closed
    clock.advance(2)
    assert t.take() == ["421 4.4.2 mail.a.test Error: timeout exceeded"]
    assert t.closed


def test_data_timeout_uses_the_longer_limit():
    """Inside DATA the data timeout (10 min) applies and the spool is dropped."""
    clock = Clock()
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery, clock=clock))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    t.raw(b"partial")
    clock.advance(400)
    assert not t.closed
    clock.advance(201)
    assert t.take() == ["421 4.4.2 mail.a.test Error: timeout exceeded"]
    assert delivery.spools[0].discarded


def test_no_timeout_while_a_port_call_is_pending():
    """The client is not timed out while we are the slow side."""
    clock = Clock()
    delivery = FakeDelivery(hold=True)
    t = Transcript(make_factory(delivery, clock=clock))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    clock.advance(1000)
    assert not t.closed
    delivery.held[0].callback(None)
    assert t.take() == ["250 2.1.0 OK"]


def test_connection_limits():
    """Connections over max_connections_per_ip are refused with 421 4.7.0."""
    factory = make_factory(FakeDelivery(), max_connections_per_ip=1, max_connections=2)
    first = Transcript(factory)
    second = Transcript(factory)
    assert second.greeting == ["421 4.7.0 mail.a.test Too many connections, try again later"]
    assert second.closed
    second.protocol.connectionLost()
    other = Transcript(factory, peer="192.0.2.8")
    assert other.greeting == ["220 mail.a.test ESMTP server ready"]
    third = Transcript(factory, peer="192.0.2.9")
    assert third.greeting[0].startswith("421 4.7.0")
    third.protocol.connectionLost()
    first.protocol.connectionLost()
    other.protocol.connectionLost()
    assert factory.connection_count == 0


def test_max_messages_per_session():
    """The MAIL after max_messages accepted messages gets 451 4.7.1 (seed-4 §7.5)."""
    delivery = FakeDelivery()
    t = ready(delivery, max_messages=1)
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    t.raw(b"one\r\n.\r\n")
    assert t.send("MAIL FROM:<a@b.test>") == ["451 4.7.1 Too many messages in this session"]
    assert len(delivery.accepted) == 1


def test_refused_helo_text_closes_the_connection():
    """A HELO argument containing a refused text gets 554 5.7.1 and a close (L6901)."""
    t = Transcript(make_factory(FakeDelivery(), refuse_helo=(".myisp.com",)))
    assert t.send("HELO svr23.MyISP.com") == ["554 5.7.1 Access denied"]
    assert t.closed
