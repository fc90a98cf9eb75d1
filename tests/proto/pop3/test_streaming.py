"""RETR streams through a push producer and honours transport back-pressure."""

from __future__ import annotations

from twisted.internet.task import Clock

from tests.proto.pop3.harness import (
    FakeMaildrops,
    TLSStringTransport,
    Transcript,
    make_factory,
)
from vpop3d.proto.pop3.server import CHUNK_SIZE


class SlowTransport(TLSStringTransport):
    """Pauses its producer once more than two chunks are unread."""

    largest_write = 0

    def write(self, data: bytes) -> None:
        super().write(data)
        self.largest_write = max(self.largest_write, len(data))
        if self.producer is not None and len(self.value()) > 2 * CHUNK_SIZE:
            self.producer.pauseProducing()


def big_message(lines: int) -> bytes:
    body = b"".join(b".line %06d of the message body\n" % n for n in range(lines))
    return b"Subject: big\r\n\r\n" + body


def slow_transcript(message: bytes) -> tuple[Transcript, SlowTransport, FakeMaildrops]:
    drops = FakeMaildrops()
    drops.add("fred", message)
    t = Transcript(make_factory(maildrops=drops), transport_class=SlowTransport)
    assert isinstance(t.transport, SlowTransport)
    t.login()
    return t, t.transport, drops


def test_large_retr_is_sent_in_chunks_under_backpressure() -> None:
    """A multi-megabyte RETR pauses with the transport and resumes to the end."""
    message = big_message(100_000)
    t, slow, drops = slow_transcript(message)
    t.protocol.dataReceived(b"RETR 1\r\nNOOP\r\n")
    received = bytearray()
    rounds = 0
    while slow.producer is not None:
        assert drops.opened[0].tell() < len(message)  # never read whole while paused
        received += t.transport.value()
        t.transport.clear()
        slow.producer.resumeProducing()
        rounds += 1
    received += t.transport.value()
    assert rounds > 10
    assert slow.largest_write <= CHUNK_SIZE * 2
    text = bytes(received)
    assert text.startswith(b"+OK %d octets\r\nSubject: big\r\n\r\n" % (len(message) + 100_000))
    assert text.count(b"\r\n..line ") == 100_000
    assert text.endswith(b"of the message body\r\n.\r\n+OK\r\n")
    assert drops.opened[0].closed


def test_connection_lost_mid_stream_closes_body_and_releases() -> None:
    """A client that drops during RETR closes the stream and deletes nothing."""
    t, slow, drops = slow_transcript(big_message(50_000))
    t.protocol.dataReceived(b"DELE 1\r\nRSET\r\nRETR 1\r\n")
    assert slow.producer is not None
    t.protocol.connectionLost()
    assert drops.opened[0].closed
    assert drops.drops[0].released
    assert drops.drops[0].committed is None


def test_client_that_stops_reading_is_aborted_after_idle_timeout() -> None:
    """A RETR stalled by a client that never reads is aborted after 600 s."""
    clock = Clock()
    drops = FakeMaildrops()
    drops.add("fred", big_message(50_000))
    t = Transcript(make_factory(maildrops=drops, clock=clock), transport_class=SlowTransport)
    t.login()
    t.protocol.dataReceived(b"RETR 1\r\n")
    assert t.transport.producer is not None
    clock.advance(599)
    assert not t.is_closed()
    clock.advance(1)
    assert t.is_closed()
    t.protocol.connectionLost()
    assert drops.opened[0].closed
    assert drops.drops[0].released
