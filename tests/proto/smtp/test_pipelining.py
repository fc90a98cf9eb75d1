"""RFC 2920 pipelining: one command in flight, replies strictly in command order."""

from __future__ import annotations

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory


def test_replies_stay_in_order_when_deferreds_fire_in_reverse():
    """Three pipelined commands with unfired Deferreds fired last-first still answer in order."""
    delivery = FakeDelivery(hold=True)
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    batch = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<fred@a.test>\r\nRCPT TO:<kate@a.test>\r\n"
    assert t.raw(batch) == []
    assert t.transport.producerState == "paused"
    # Only the first command is in flight; the rest wait in the buffer.
    assert len(delivery.held) == 1
    delivery.held[0].callback(None)
    assert t.take() == ["250 2.1.0 OK"]
    assert len(delivery.held) == 2
    delivery.held[1].callback(None)
    assert t.take() == ["250 2.1.5 OK"]
    delivery.held[2].callback(None)
    assert t.take() == ["250 2.1.5 OK"]
    assert t.transport.producerState == "producing"


def test_held_replies_fired_out_of_order_cannot_reorder_output():
    """Firing a later Deferred before an earlier one is impossible: it does not exist yet."""
    delivery = FakeDelivery(hold=True)
    t = Transcript(make_factory(delivery))
    t.send("EHLO c")
    t.raw(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<fred@a.test>\r\nNOOP\r\nRSET\r\n")
    assert len(delivery.held) == 1  # RCPT not started before MAIL is answered
    delivery.held.pop(0).callback(None)
    first = t.take()
    assert first == ["250 2.1.0 OK"]
    delivery.held.pop(0).callback(None)
    assert t.take() == ["250 2.1.5 OK", "250 2.0.0 OK", "250 2.0.0 OK"]


def test_full_transaction_in_one_packet():
    """A whole pipelined transaction in one packet gets every reply in order."""
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery))
    packet = (
        b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<fred@a.test>\r\n"
        b"RCPT TO:<nosuch@a.test>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n"
    )
    replies = t.raw(packet)
    assert replies[-6:] == [
        "250 2.1.0 OK",
        "250 2.1.5 OK",
        "550 5.1.1 Recipient not recognised",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 OK - queued as Q0001",
        "221 2.0.0 Bye, see you later",
    ]
    assert delivery.accepted[0].body == b"hello\r\n"


def test_refused_rcpt_in_pipeline_does_not_stop_later_commands():
    """A refused recipient in a pipelined group does not eat the following commands."""
    t = Transcript(make_factory(FakeDelivery()))
    t.send("EHLO c")
    replies = t.raw(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@remote.test>\r\nRCPT TO:<fred@a.test>\r\n")
    assert replies == ["250 2.1.0 OK", "550 5.7.1 Relaying denied", "250 2.1.5 OK"]
