"""One command in flight: pipelined commands are answered in order (RFC 2449 §6.6)."""

from __future__ import annotations

from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail

from tests.proto.pop3.harness import (
    FakeAuthenticator,
    Transcript,
    make_factory,
    sample_maildrops,
)
from vpop3d.ports import Principal


def test_pipelined_login_waits_for_authenticator() -> None:
    """Commands behind a pending PASS are held, then answered in order."""
    pending: list[Deferred[Principal]] = []
    authenticator = FakeAuthenticator(pending=pending)
    t = Transcript(make_factory(authenticator, sample_maildrops()))
    t.greeting()
    assert t.send("USER fred", "PASS letmein", "STAT", "LIST 1") == "+OK Enter password\r\n"
    assert t.transport.producerState == "paused"
    assert len(pending) == 1
    pending[0].callback(authenticator.principal("fred"))
    assert t.take() == "+OK 3 messages (89 octets)\r\n+OK 3 89\r\n+OK 1 28\r\n"
    assert t.transport.producerState == "producing"


def test_pipelined_retrievals_fired_in_reverse_still_answer_in_order() -> None:
    """Body opens fired out of order cannot reorder the replies."""
    drops = sample_maildrops()
    t = Transcript(make_factory(maildrops=drops))
    t.login()
    drops.body_waiters = []
    assert t.send("RETR 1", "RETR 3", "NOOP") == ""
    # Only the first command is in flight; the second has not started.
    assert len(drops.body_waiters) == 1
    first, first_stream = drops.body_waiters[0]
    first.callback(first_stream)
    out = t.take()
    assert out.startswith("+OK 28 octets\r\nSubject: one\r\n")
    assert out.endswith("first body\r\n.\r\n")
    assert len(drops.body_waiters) == 2
    second, second_stream = drops.body_waiters[1]
    second.callback(second_stream)
    assert t.take() == "+OK 25 octets\r\nSubject: three\r\n\r\nthird\r\n.\r\n+OK\r\n"


def test_pipelined_commands_in_one_segment() -> None:
    """A whole pipelined batch in one segment gets every reply, in order."""
    t = Transcript(make_factory(maildrops=sample_maildrops()))
    t.greeting()
    out = t.send("USER fred", "PASS letmein", "DELE 1", "STAT", "UIDL 2", "QUIT")
    assert out == (
        "+OK Enter password\r\n"
        "+OK 3 messages (89 octets)\r\n"
        "+OK message 1 deleted\r\n"
        "+OK 2 61\r\n"
        "+OK 2 anh-637723\r\n"
        "+OK signing off\r\n"
    )
    assert t.is_closed()


def test_nothing_is_read_after_quit() -> None:
    """Lines pipelined after QUIT are ignored."""
    t = Transcript(make_factory(maildrops=sample_maildrops()))
    t.greeting()
    assert t.send("QUIT", "USER fred") == "+OK signing off\r\n"
    t.protocol.dataReceived(b"NOOP\r\n")
    assert t.take() == ""


def test_unexpected_error_gives_temporary_failure_and_session_survives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug below the adapter answers -ERR [SYS/TEMP] and the session goes on."""
    drops = sample_maildrops()
    t = Transcript(make_factory(maildrops=drops))
    t.login()

    def broken(message_id: int) -> Deferred[BinaryIO]:
        return fail(RuntimeError("store is broken"))

    monkeypatch.setattr(drops.drops[0], "open_body", broken)
    t.expect("RETR 1", "-ERR [SYS/TEMP] Temporary server error, please try again later")
    t.expect("STAT", "+OK 3 89")


SCRIPT = (
    b"CAPA\r\nUSER fred\r\nPASS letmein\r\nSTAT\r\nLIST\r\nUIDL 2\r\nTOP 2 1\r\n"
    b"RETR 1\r\nDELE 1\r\nLIST 1\r\nRSET\r\nNOOP\r\nBOGUS\r\nQUIT\r\n"
)


def run_script(pieces: list[bytes]) -> str:
    t = Transcript(make_factory(maildrops=sample_maildrops()))
    for piece in pieces:
        t.protocol.dataReceived(piece)
    return t.take()


@given(st.lists(st.integers(min_value=0, max_value=len(SCRIPT)), max_size=12))
def test_replies_do_not_depend_on_segmentation(cuts: list[int]) -> None:
    """However the client's bytes are split into segments, the replies are the same."""
    points = sorted(set(cuts))
    pieces = [
        SCRIPT[start:end] for start, end in zip([0, *points], [*points, len(SCRIPT)], strict=True)
    ]
    whole = run_script([SCRIPT])
    assert whole.endswith("+OK signing off\r\n")
    assert whole.count("-ERR") == 2  # LIST of a deleted message, BOGUS
    assert run_script(pieces) == whole
