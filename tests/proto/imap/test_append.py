"""APPEND with flags, dates and literals; UIDPLUS APPENDUID."""

from __future__ import annotations

from datetime import UTC

from tests.proto.imap.fakes import Client, message


def _client() -> Client:
    client = Client()
    client.login()
    return client


def test_append_to_sent_items() -> None:
    """APPEND stores the literal in a folder with a space in its name (spec check 36)."""
    client = _client()
    client.send('a0 CREATE "Sent Items"')
    raw = message("copy")
    assert client.raw(b'a1 APPEND "Sent Items" (\\Seen) {%d}\r\n' % len(raw)) == (
        "+ Ready for literal data\r\n"
    )
    folder = client.store.folders["Sent Items"]
    assert client.raw(raw + b"\r\n") == (
        f"a1 OK [APPENDUID {folder.uidvalidity} 1] APPEND completed\r\n"
    )
    stored = folder.messages[1]
    assert stored.raw == raw
    assert stored.flags == frozenset({"\\Seen"})


def test_append_with_date_and_literal_plus() -> None:
    """An INTERNALDATE argument is kept; LITERAL+ needs no continuation."""
    client = _client()
    raw = message("dated")
    out = client.raw(
        b'a1 APPEND Drafts (\\Draft) "05-Mar-2024 10:11:12 +0100" {%d+}\r\n%s\r\n' % (len(raw), raw)
    )
    assert out.startswith("a1 OK [APPENDUID ")
    stored = client.store.folders["Drafts"].messages[1]
    assert stored.internal_date.astimezone(UTC).hour == 9


def test_append_to_missing_folder_is_trycreate() -> None:
    """APPEND to a folder that does not exist is NO [TRYCREATE]."""
    client = _client()
    assert (
        client.raw(b"a1 APPEND Nowhere {3+}\r\nabc\r\n") == "a1 NO [TRYCREATE] No such mailbox\r\n"
    )


def test_append_bad_date_is_bad() -> None:
    """A malformed date-time is a syntax error."""
    client = _client()
    assert client.raw(b'a1 APPEND INBOX "yesterday" {3+}\r\nabc\r\n').startswith("a1 BAD ")


def test_append_to_selected_folder_announces_exists() -> None:
    """APPEND into the selected folder reports the new EXISTS before the tagged OK."""
    client = _client()
    client.select()
    out = client.raw(b"a1 APPEND INBOX {3+}\r\nabc\r\n").splitlines()
    assert out[:2] == ["* 1 EXISTS", "* 1 RECENT"]
    assert out[2].startswith("a1 OK [APPENDUID ")


def test_append_needs_authentication() -> None:
    """APPEND before login is BAD."""
    client = Client()
    assert client.raw(b"a1 APPEND INBOX {3+}\r\nabc\r\n").startswith("a1 BAD ")
