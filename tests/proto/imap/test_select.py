"""SELECT, EXAMINE, CLOSE, UNSELECT and the selected-state rules."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, with_messages


def test_select_responses() -> None:
    """SELECT reports FLAGS, EXISTS, RECENT, UNSEEN, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT."""
    store = with_messages(3)
    store.folders["INBOX"].messages[1].flags = frozenset({"\\Seen"})
    client = Client(store)
    client.login()
    lines = client.lines("a1 SELECT INBOX")
    assert lines == [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* 3 EXISTS",
        "* 3 RECENT",
        "* OK [UNSEEN 2] First unseen message",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
        "* OK [UIDVALIDITY 1001] UIDs valid",
        "* OK [UIDNEXT 4] Predicted next UID",
        "* OK [HIGHESTMODSEQ 4] Highest",
        "a1 OK [READ-WRITE] SELECT completed",
    ]


def test_recent_goes_to_one_session_only() -> None:
    """\\Recent is shown to the first session that sees a message, not to later ones."""
    store = with_messages(2)
    first, second = Client(store), Client(store)
    first.login()
    second.login()
    assert "* 2 RECENT" in first.lines("a1 SELECT INBOX")
    assert "* 0 RECENT" in second.lines("a1 SELECT INBOX")


def test_examine_is_read_only() -> None:
    """EXAMINE answers [READ-ONLY], empty PERMANENTFLAGS, and refuses STORE and EXPUNGE."""
    client = Client(with_messages(1))
    client.login()
    lines = client.lines("a1 EXAMINE INBOX")
    assert "* OK [PERMANENTFLAGS ()] Flags permitted" in lines
    assert lines[-1] == "a1 OK [READ-ONLY] EXAMINE completed"
    assert client.send("a2 STORE 1 +FLAGS (\\Seen)").startswith("a2 NO [READ-ONLY]")
    assert client.send("a3 EXPUNGE").startswith("a3 NO [READ-ONLY]")


def test_examine_fetch_does_not_set_seen() -> None:
    """BODY[] in a read-only mailbox leaves \\Seen unset."""
    store = with_messages(1)
    client = Client(store)
    client.login()
    client.send("a1 EXAMINE INBOX")
    client.send("a2 FETCH 1 BODY[]")
    assert store.folders["INBOX"].messages[1].flags == frozenset()


def test_select_missing_mailbox_leaves_authenticated_state() -> None:
    """A failed SELECT closes the previous mailbox (RFC 3501 §6.3.1), said with [CLOSED]."""
    client = Client(with_messages(1))
    client.login()
    client.select()
    assert client.lines("a2 SELECT Nowhere") == [
        "* OK [CLOSED] Previous mailbox closed",  # RFC 7162 §3.2.11
        "a2 NO [NONEXISTENT] No such mailbox",
    ]
    assert client.send("a3 FETCH 1 FLAGS") == "a3 BAD No mailbox selected\r\n"


def test_select_is_case_insensitive_for_inbox() -> None:
    """'inbox' in any case names INBOX."""
    client = Client(with_messages(1))
    client.login()
    assert "a1 OK" in client.send("a1 SELECT iNbOx")


def test_close_expunges_silently() -> None:
    """CLOSE removes \\Deleted messages without EXPUNGE responses."""
    store = with_messages(2)
    client = Client(store)
    client.login()
    client.select()
    client.send("a1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert client.send("a2 CLOSE") == "a2 OK CLOSE completed\r\n"
    assert list(store.folders["INBOX"].messages) == [2]
    assert client.send("a3 FETCH 1 FLAGS").startswith("a3 BAD ")


def test_unselect_does_not_expunge() -> None:
    """UNSELECT (RFC 3691) leaves \\Deleted messages in place."""
    store = with_messages(2)
    client = Client(store)
    client.login()
    client.select()
    client.send("a1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert client.send("a2 UNSELECT") == "a2 OK UNSELECT completed\r\n"
    assert list(store.folders["INBOX"].messages) == [1, 2]


def test_reselect_stops_watching_previous_folder() -> None:
    """Selecting another folder closes the previous handle."""
    store = with_messages(1)
    client = Client(store)
    client.login()
    client.select()
    client.send("a1 SELECT Sent")
    assert store.selected[0].closed
    assert store.folders["INBOX"].listeners == []


def test_logout_closes_folder() -> None:
    """LOGOUT closes the selected folder and the connection."""
    store = with_messages(1)
    client = Client(store)
    client.login()
    client.select()
    client.send("a1 LOGOUT")
    assert store.selected[0].closed
    assert client.transport.disconnecting
