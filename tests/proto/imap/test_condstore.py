"""CONDSTORE (RFC 7162 §3.1): MODSEQ in FETCH, CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, with_messages


def _client(count: int = 3) -> Client:
    client = Client(with_messages(count))
    client.login()
    return client


def test_capability_and_highestmodseq() -> None:
    """CONDSTORE is advertised and SELECT reports HIGHESTMODSEQ."""
    client = _client()
    assert "CONDSTORE" in client.send("a0 CAPABILITY")
    assert "* OK [HIGHESTMODSEQ 4] Highest" in client.lines("a1 SELECT INBOX (CONDSTORE)")


def test_fetch_modseq() -> None:
    """FETCH MODSEQ returns each message's mod-sequence."""
    client = _client()
    client.send("s1 SELECT INBOX (CONDSTORE)")
    assert client.lines("a1 FETCH 1:2 (MODSEQ)") == [
        "* 1 FETCH (MODSEQ (2))",
        "* 2 FETCH (MODSEQ (3))",
        "a1 OK FETCH completed",
    ]


def test_changedsince_lists_only_newer() -> None:
    """FETCH (CHANGEDSINCE n) returns messages with a higher MODSEQ, with MODSEQ added."""
    client = _client()
    client.send("s1 SELECT INBOX (CONDSTORE)")
    client.send("a0 STORE 1 +FLAGS (\\Seen)")  # message 1 now has MODSEQ 5
    assert client.lines("a1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (5))",
        "* 3 FETCH (UID 3 FLAGS (\\Recent) MODSEQ (4))",
        "a1 OK UID FETCH completed",
    ]


def test_unchangedsince_reports_modified() -> None:
    """STORE (UNCHANGEDSINCE n) skips messages changed since and names them in MODIFIED."""
    client = _client()
    client.send("s1 SELECT INBOX (CONDSTORE)")
    client.send("a0 STORE 2 +FLAGS.SILENT (\\Flagged)")  # message 2: MODSEQ 5
    lines = client.lines("a1 STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Deleted)")
    assert lines == [
        "* 1 FETCH (UID 1 MODSEQ (6))",  # RFC 7162 §3.1: UID and MODSEQ once enabled
        "* 3 FETCH (UID 3 MODSEQ (7))",
        "a1 OK [MODIFIED 2] Conditional STORE failed",
    ]
    flags = client.store.folders["INBOX"].messages
    assert "\\Deleted" not in flags[2].flags
    assert "\\Deleted" in flags[1].flags


def test_unsolicited_fetch_carries_modseq_once_enabled() -> None:
    """After ENABLE CONDSTORE, flag changes by others arrive with MODSEQ."""
    store = with_messages(2)
    first, second = Client(store), Client(store)
    for client in (first, second):
        client.login()
    second.send("b0 ENABLE CONDSTORE")
    for client in (first, second):
        client.select()
    first.send("a1 STORE 2 +FLAGS (\\Answered)")
    assert second.lines("b1 NOOP")[0] == "* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (4))"


def test_search_modseq() -> None:
    """SEARCH MODSEQ n finds newer messages and reports the highest MODSEQ."""
    client = _client()
    client.send("s1 SELECT INBOX (CONDSTORE)")
    assert client.lines("a1 SEARCH MODSEQ 3")[0] == "* SEARCH 2 3 (MODSEQ 4)"  # ">=" (RFC 7162)
    assert client.lines("a2 SEARCH MODSEQ 100")[0] == "* SEARCH"


def test_status_highestmodseq() -> None:
    """STATUS HIGHESTMODSEQ reports the folder's value."""
    client = _client()
    assert client.lines("a1 STATUS INBOX (HIGHESTMODSEQ MESSAGES)")[0] == (
        '* STATUS "INBOX" (HIGHESTMODSEQ 4 MESSAGES 3)'
    )


def test_first_enabling_command_announces_highestmodseq() -> None:
    """A CONDSTORE-enabling FETCH after a plain SELECT first sends HIGHESTMODSEQ."""
    client = _client()
    client.select()
    assert client.lines("a1 FETCH 1 (MODSEQ)")[:2] == [
        "* OK [HIGHESTMODSEQ 4] Highest",
        "* 1 FETCH (MODSEQ (2))",
    ]


def test_bad_modifiers() -> None:
    """Unknown FETCH/STORE modifiers and SELECT parameters are BAD."""
    client = _client()
    assert client.send("a0 SELECT INBOX (QRESYNC (1 2))").startswith("a0 BAD ")
    client.select()
    assert client.send("a1 FETCH 1 FLAGS (VANISHED)").startswith("a1 BAD ")
    assert client.send("a2 STORE 1 (FOO 1) +FLAGS (x)").startswith("a2 BAD ")


def test_condstore_store_and_implicit_seen_report_uid_and_modseq() -> None:
    """Once CONDSTORE is on, STORE and an implicit \\Seen report UID and MODSEQ (§3.1)."""
    client = _client()
    client.send("s1 SELECT INBOX (CONDSTORE)")
    assert client.lines("a1 STORE 1 +FLAGS (\\Flagged)")[0] == (
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ (5))"
    )
    out = client.lines("a2 FETCH 2 (BODY[TEXT])")
    assert out[0].startswith("* 2 FETCH (UID 2 BODY[TEXT] {")
    assert out[2] == " FLAGS (\\Seen \\Recent) MODSEQ (6))"
