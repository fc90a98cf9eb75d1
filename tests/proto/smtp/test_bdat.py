"""CHUNKING / BDAT (RFC 3030): exact octet counts, LAST, refusals that still read."""

from __future__ import annotations

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory


def in_transaction(delivery: FakeDelivery) -> Transcript:
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    return t


def test_chunks_are_counted_exactly():
    """Chunk bytes are taken verbatim, CRLF and dots included."""
    delivery = FakeDelivery()
    t = in_transaction(delivery)
    assert t.raw(b"BDAT 7\r\n.\r\nab\r\n") == ["250 2.0.0 OK"]
    assert t.raw(b"BDAT 5 LAST\r\nc\r\n.\r") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b".\r\nab\r\nc\r\n.\r"


def test_chunk_split_over_packets_and_pipelined_command():
    """A chunk arriving in pieces ends at its count; the next command follows."""
    delivery = FakeDelivery()
    t = in_transaction(delivery)
    assert t.raw(b"BDAT 10 LAST\r\n01234") == []
    assert t.raw(b"56789NOOP\r\n") == ["250 2.0.0 OK - queued as Q0001", "250 2.0.0 OK"]


def test_bdat_without_recipients_reads_and_refuses():
    """BDAT out of sequence still consumes its octets, then says 503."""
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    assert t.raw(b"BDAT 6 LAST\r\nNOOP\r\n") == ["503 5.5.1 Need MAIL command"]
    t.send("MAIL FROM:<a@b.test>")
    assert t.raw(b"BDAT 4\r\nQUIT") == ["503 5.5.1 No valid recipients"]
    assert not t.closed


def test_data_after_bdat_is_refused():
    """DATA may not follow a BDAT chunk in the same transaction."""
    t = in_transaction(FakeDelivery())
    t.raw(b"BDAT 3\r\nabc")
    assert t.send("DATA") == ["503 5.5.1 Only BDAT, RSET, NOOP or QUIT during BDAT"]
    assert t.send("RSET") == ["250 2.0.0 OK"]


def test_bdat_over_size_limit():
    """Chunks past the size limit give 552 5.3.4 and end the transaction."""
    delivery = FakeDelivery(max_size=5)
    t = in_transaction(delivery)
    assert t.raw(b"BDAT 8 LAST\r\n12345678") == [
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ]
    assert delivery.accepted == []
    assert t.raw(b"BDAT 1 LAST\r\nx") == ["503 5.5.1 Need MAIL command"]


def test_bdat_zero_last():
    """`BDAT 0 LAST` ends a chunked message."""
    delivery = FakeDelivery()
    t = in_transaction(delivery)
    t.raw(b"BDAT 2\r\nhi")
    assert t.send("BDAT 0 LAST") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"hi"


def test_bdat_syntax():
    """A BDAT without a valid size is a 501."""
    t = in_transaction(FakeDelivery())
    assert t.send("BDAT x") == ["501 5.5.4 Syntax: BDAT size [LAST]"]
    assert t.send("BDAT 5 FIRST") == ["501 5.5.4 Syntax: BDAT size [LAST]"]


def test_rset_between_chunks_starts_a_fresh_body():
    """Chunks before an RSET never leak into the next message."""
    delivery = FakeDelivery()
    t = in_transaction(delivery)
    t.raw(b"BDAT 3\r\nabc")
    assert t.send("RSET") == ["250 2.0.0 OK"]
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    assert t.raw(b"BDAT 2 LAST\r\nxy") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"xy"
    assert delivery.spools[0].discarded


def test_data_after_abandoned_chunks_gets_its_own_body():
    """DATA after RSET of a chunked transaction stores only its own lines."""
    delivery = FakeDelivery()
    t = in_transaction(delivery)
    t.raw(b"BDAT 3\r\nabc")
    t.send("RSET")
    t.send("MAIL FROM:<a@b.test>")
    t.send("RCPT TO:<fred@a.test>")
    t.send("DATA")
    assert t.raw(b"new\r\n.\r\n") == ["250 2.0.0 OK - queued as Q0001"]
    assert delivery.accepted[0].body == b"new\r\n"
