"""Command framing: literals, LITERAL+, limits, pipelining order, bad lines and timers."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from tests.proto.imap.fakes import Client, FakeStore
from vpop3d.ports import Principal
from vpop3d.proto.imap.mailbox import FolderStatus
from vpop3d.proto.imap.server import IMAPLimits


def test_synchronizing_literal_gets_continuation() -> None:
    """A {n} literal is answered with '+ Ready' before the octets are read."""
    client = Client()
    assert client.raw(b"a1 LOGIN {4}\r\n") == "+ Ready for literal data\r\n"
    assert client.raw(b"fred {6}\r\n") == "+ Ready for literal data\r\n"
    assert client.raw(b"secret\r\n").startswith("a1 OK ")


def test_nonsynchronizing_literal_has_no_continuation() -> None:
    """LITERAL+ {n+} octets follow at once; no '+' is sent (RFC 7888)."""
    client = Client()
    assert client.raw(b"a1 LOGIN {4+}\r\nfred {6+}\r\nsecret\r\n").startswith("a1 OK ")


def test_literal_split_across_packets() -> None:
    """A literal arriving a byte at a time is reassembled."""
    client = Client()
    client.raw(b"a1 LOGIN fred {6}\r\n")
    out = ""
    for byte in b"secret\r\n":
        out += client.raw(bytes([byte]))
    assert out.startswith("a1 OK ")


def test_oversized_literal_refused_before_reading() -> None:
    """A too-large synchronizing literal is refused without a continuation."""
    client = Client(limits=IMAPLimits(max_literal=100))
    assert client.raw(b"a1 LOGIN fred {101}\r\n") == "a1 NO Literal too large\r\n"
    assert client.send("a2 NOOP") == "a2 OK NOOP completed\r\n"


def test_oversized_append_literal_is_toobig() -> None:
    """APPEND over APPENDLIMIT is refused with [TOOBIG] before the message is sent."""
    client = Client()
    client.login()
    limit = client.protocol.session.config.append_limit
    out = client.raw(b"a2 APPEND INBOX {%d}\r\n" % (limit + 1))
    assert out == "a2 NO [TOOBIG] Literal too large\r\n"
    assert not client.transport.disconnecting


def test_oversized_nonsync_literal_closes() -> None:
    """An over-limit LITERAL+ literal cannot be skipped safely: BAD, then BYE."""
    client = Client(limits=IMAPLimits(max_literal=10))
    out = client.raw(b"a1 LOGIN fred {11+}\r\n")
    assert out.startswith("a1 BAD Literal too large\r\n* BYE ")
    assert client.transport.disconnecting


def test_line_too_long_closes() -> None:
    """A command line over the limit ends the connection with BYE."""
    client = Client(limits=IMAPLimits(max_line=100))
    out = client.raw(b"a1 NOOP" + b"x" * 200)
    assert out.startswith("* BYE Line too long")
    assert client.transport.disconnecting


def test_unknown_command_is_bad() -> None:
    """An unknown verb is a tagged BAD and the session continues."""
    client = Client()
    assert client.send("a1 FROB").startswith("a1 BAD Unknown command")
    assert client.send("a2 NOOP") == "a2 OK NOOP completed\r\n"


def test_missing_tag_is_untagged_bad() -> None:
    """A line without a valid tag is answered with an untagged BAD."""
    client = Client()
    assert client.send("(x NOOP").startswith("* BAD ")


def test_empty_line_is_ignored() -> None:
    """Blank lines between commands produce no response."""
    client = Client()
    assert client.raw(b"\r\n") == ""


def test_bare_lf_line_end_accepted() -> None:
    """A command ended by bare LF is still executed."""
    client = Client()
    assert client.raw(b"a1 NOOP\n") == "a1 OK NOOP completed\r\n"


class SlowStore(FakeStore):
    """STATUS answers only when the test fires the Deferred."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Deferred[FolderStatus]] = []

    def status(self, user: Principal, name: str) -> Deferred[FolderStatus]:
        waiting: Deferred[FolderStatus] = Deferred()
        self.pending.append(waiting)
        return waiting


def test_pipelined_replies_stay_in_order() -> None:
    """Pipelined commands run one at a time; replies come out in command order."""
    store = SlowStore()
    client = Client(store)
    client.login()
    out = client.raw(b"a1 STATUS INBOX (MESSAGES)\r\na2 NOOP\r\na3 STATUS Sent (MESSAGES)\r\n")
    assert out == ""
    assert len(store.pending) == 1
    store.pending[0].callback(FolderStatus(5, 0, 1, 1, 0, 1))
    out = client.take()
    assert out.splitlines() == [
        '* STATUS "INBOX" (MESSAGES 5)',
        "a1 OK STATUS completed",
        "a2 OK NOOP completed",
    ]
    store.pending[1].callback(FolderStatus(7, 0, 1, 1, 0, 1))
    assert client.take().splitlines() == ['* STATUS "Sent" (MESSAGES 7)', "a3 OK STATUS completed"]


def test_store_failure_is_temporary_no() -> None:
    """An unexpected store failure gives a tagged NO and the session survives."""
    store = SlowStore()
    client = Client(store)
    client.login()
    client.send("a1 STATUS INBOX (MESSAGES)")
    store.pending[0].errback(RuntimeError("database gone"))
    assert client.take() == "a1 NO [UNAVAILABLE] Temporary server error, please try again\r\n"
    assert client.send("a2 NOOP") == "a2 OK NOOP completed\r\n"


def test_autologout_after_thirty_minutes() -> None:
    """An authenticated client silent for 30 minutes is logged out (RFC 3501 §5.4)."""
    client = Client()
    client.login()
    client.clock.advance(29 * 60)
    assert client.take() == ""
    client.clock.advance(61)
    assert client.take().startswith("* BYE Autologout")
    assert client.transport.disconnecting


def test_activity_resets_autologout() -> None:
    """Any command restarts the inactivity timer."""
    client = Client()
    client.login()
    client.clock.advance(25 * 60)
    client.send("a1 NOOP")
    client.clock.advance(25 * 60)
    assert not client.transport.disconnecting


def test_unauthenticated_timeout_is_shorter() -> None:
    """A connection that never logs in is dropped after the login timeout."""
    client = Client()
    client.clock.advance(5 * 60 + 1)
    assert client.take().startswith("* BYE ")


def test_refused_address_gets_bye() -> None:
    """A peer refused by the access rules gets the manual's BYE and is dropped (seed-4 §8.2)."""
    refused: list[str] = []

    def gate(ip: str) -> bool:
        refused.append(ip)
        return False

    client = Client(gate=gate)
    assert client.greeting == "* BYE VPOP3 IMAP4rev1 Server access not allowed!\r\n"
    assert client.transport.disconnecting
    assert refused == ["192.0.2.7"]
