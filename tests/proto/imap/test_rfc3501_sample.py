"""The RFC 3501 §8 sample session, replayed against the server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.proto.imap.fakes import Client, FakeStore, message
from vpop3d.ports import Principal

# Header fields of message 12 in the RFC 3501 §8 example.
RFC_MESSAGE = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Minutes follow.\r\n"
)


def _store() -> FakeStore:
    store = FakeStore()
    store.ensure_defaults(Principal(1, "mrc", False, "mrc@example.test"))
    inbox = store.folders["INBOX"]
    inbox.uidvalidity = 3857529045
    when = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7)))
    for n in range(1, 19):
        raw = RFC_MESSAGE if n == 12 else message(f"m{n}")
        flags = frozenset() if n >= 17 else frozenset({"\\Seen"})
        inbox.add(raw, flags, when)
    inbox.recent_claimed = 16  # messages 17 and 18 are new to this session
    return store


def test_sample_session() -> None:
    """Every response of the RFC 3501 §8 example appears, in order, with our texts."""
    client = Client(_store())
    client.auth.passwords = {"mrc": "secret"}
    assert client.greeting.startswith("* OK ")
    assert client.send("a001 login mrc secret").startswith("a001 OK ")

    select = client.lines("a002 select inbox")
    assert "* 18 EXISTS" in select
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in select
    assert "* 2 RECENT" in select
    assert "* OK [UNSEEN 17] First unseen message" in select
    assert "* OK [UIDVALIDITY 3857529045] UIDs valid" in select
    assert select[-1] == "a002 OK [READ-WRITE] SELECT completed"

    full = client.lines("a003 fetch 12 full")
    assert full[0].startswith(
        '* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        f"RFC822.SIZE {len(RFC_MESSAGE)} ENVELOPE ("
    )
    assert '"IMAP4rev1 WG mtg summary and minutes"' in full[0]
    assert '(("Terry Gray" NIL "gray" "cac.washington.edu"))' in full[0]
    assert full[0].endswith('BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 17 1))')
    assert full[1] == "a003 OK FETCH completed"

    header = client.send("a004 fetch 12 body[header]")
    head_size = RFC_MESSAGE.index(b"\r\n\r\n") + 4
    assert header.startswith(f"* 12 FETCH (BODY[HEADER] {{{head_size}}}\r\nDate: Wed")
    assert header.endswith("\r\n\r\n)\r\na004 OK FETCH completed\r\n")

    store = client.lines("a005 store 12 +flags \\deleted")
    assert store == ["* 12 FETCH (FLAGS (\\Deleted \\Seen))", "a005 OK STORE completed"]

    logout = client.lines("a006 logout")
    assert logout[0].startswith("* BYE ")
    assert logout[1] == "a006 OK LOGOUT completed"
    assert client.transport.disconnecting
