"""However the client's bytes are cut into packets, the server answers the same."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory

SESSION = (
    b"EHLO c\r\nMAIL FROM:<a@b.test> SIZE=40\r\nRCPT TO:<fred@a.test>\r\n"
    b"RCPT TO:<nosuch@a.test>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\nend\r\n.\r\n"
    b"MAIL FROM:<>\r\nRCPT TO:<kate@a.test>\r\nBDAT 5\r\nab\r\nc"
    b"BDAT 3 LAST\r\n.\r\nNOOP\r\nQUIT\r\n"
)


def run(chunks: list[bytes]) -> tuple[bytes, list[bytes]]:
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery))
    for chunk in chunks:
        t.protocol.dataReceived(chunk)
    output: bytes = t.transport.value()
    return output, [accepted.body for accepted in delivery.accepted]


WHOLE = run([SESSION])


def test_whole_session_reference():
    """The one-packet run delivers both messages and ends with 221."""
    output, bodies = WHOLE
    assert bodies == [b"Subject: x\r\n\r\n.dot\r\nend\r\n", b"ab\r\nc.\r\n"]
    assert output.endswith(b"221 2.0.0 Bye, see you later\r\n")


@settings(max_examples=60)
@given(st.lists(st.integers(0, len(SESSION)), max_size=12))
def test_any_split_gives_the_same_replies(cuts: list[int]):
    """Splitting the byte stream anywhere yields identical replies and bodies."""
    points = sorted(cuts)
    chunks = [SESSION[a:b] for a, b in zip([0, *points], [*points, len(SESSION)], strict=True)]
    assert run(chunks) == WHOLE
