"""Random command streams never break the session: every reply is well formed."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, capturedLogs

from tests.proto.smtp.fakes import FakeDelivery, Transcript, make_factory

REPLY = re.compile(r"^[2-5]\d\d[ -]")

LINES = [
    b"EHLO c",
    b"HELO c",
    b"MAIL FROM:<a@b.test>",
    b"MAIL FROM:<> SIZE=10 BODY=8BITMIME",
    b"RCPT TO:<fred@a.test>",
    b"RCPT TO:<nosuch@a.test>",
    b"RCPT TO:<x@remote.test>",
    b"DATA",
    b"BDAT 3",
    b"BDAT 2 LAST",
    b"RSET",
    b"NOOP",
    b"VRFY fred",
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"*",
    b"AGZyZWQAc2VjcmV0",
    b".",
    b"..x",
    b"hello",
    b"STARTTLS",
    b"HELP",
    b"\xff\x00",
    b"",
]


OPENING = b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<fred@a.test>\r\n"


@settings(max_examples=200)
@given(
    st.booleans(),
    st.lists(
        st.tuples(st.sampled_from(LINES), st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"])),
        max_size=40,
    ),
)
def test_random_streams_give_well_formed_replies(opened: bool, stream: list[tuple[bytes, bytes]]):
    """Any mix of commands, body lines and odd line ends: only valid replies, no bug logs."""
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery, allow_plaintext_auth_without_tls=True, max_errors=0))
    with capturedLogs() as events:
        t.raw((OPENING if opened else b"") + b"".join(line + end for line, end in stream))
        t.protocol.connectionLost()
    output = t.transport.value().decode("utf-8")
    for line in output.split("\r\n")[:-1]:
        assert REPLY.match(line), line
    assert not [event for event in events if event["log_level"] >= LogLevel.error]
    for spool in delivery.spools:
        assert spool.discarded or any(a.body == bytes(spool.data) for a in delivery.accepted)
