"""QRESYNC (RFC 7162 §3.2): ENABLE, SELECT (QRESYNC ...), VANISHED, FETCH ... VANISHED."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, FakeStore, with_messages

UIDVALIDITY = 1001  # INBOX is the fake store's first folder


def _changed_store() -> FakeStore:
    """INBOX had UIDs 1-3 at MODSEQ 4; then 1 was expunged and 3 was flagged \\Seen."""
    store = with_messages(3)
    writer = Client(store)
    writer.login()
    writer.select()
    writer.send("w1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    writer.send("w2 EXPUNGE")
    assert "w3 OK" in writer.send("w3 UID STORE 3 +FLAGS.SILENT (\\Seen)")
    return store


def _qresync_client(store: FakeStore) -> Client:
    client = Client(store)
    client.login()
    assert client.lines("e1 ENABLE QRESYNC") == ["* ENABLED QRESYNC", "e1 OK ENABLE completed"]
    return client


def test_qresync_advertised() -> None:
    """QRESYNC is advertised after login next to CONDSTORE."""
    client = Client(with_messages(0))
    client.login()
    assert {"QRESYNC", "CONDSTORE"} <= set(client.lines("c1 CAPABILITY")[0].split())


def test_select_qresync_reports_vanished_and_changes() -> None:
    """SELECT (QRESYNC (uidvalidity modseq)) sends VANISHED (EARLIER) and changed FETCHes."""
    client = _qresync_client(_changed_store())
    out = client.lines(f"s1 SELECT INBOX (QRESYNC ({UIDVALIDITY} 4))")
    assert "* OK [HIGHESTMODSEQ 7] Highest" in out
    tail = out[out.index("* OK [HIGHESTMODSEQ 7] Highest") + 1 :]
    assert tail == [
        "* VANISHED (EARLIER) 1",
        "* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (7))",
        "s1 OK [READ-WRITE] SELECT completed",
    ]


def test_select_qresync_known_uids_and_wrong_uidvalidity() -> None:
    """known-uids limits VANISHED; another UIDVALIDITY means a plain SELECT."""
    store = _changed_store()
    client = _qresync_client(store)
    out = client.lines(f"s1 EXAMINE INBOX (QRESYNC ({UIDVALIDITY} 4 2:3 (1:2 2:3)))")
    assert not any(line.startswith("* VANISHED") for line in out)
    assert "* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (7))" in out
    out = client.lines("s2 SELECT INBOX (QRESYNC (99 4))")
    assert not any("VANISHED" in line or "FETCH" in line for line in out)
    assert out[-1] == "s2 OK [READ-WRITE] SELECT completed"


def test_select_qresync_needs_enable() -> None:
    """SELECT with QRESYNC before ENABLE QRESYNC is BAD; a bad parameter list too."""
    client = Client(_changed_store())
    client.login()
    assert client.lines(f"s1 SELECT INBOX (QRESYNC ({UIDVALIDITY} 4))") == [
        "s1 BAD QRESYNC is not enabled"
    ]
    assert client.lines(f"s2 SELECT INBOX (QRESYNC ({UIDVALIDITY} 0))")[0].startswith("s2 BAD")


def test_expunges_become_vanished() -> None:
    """With QRESYNC on, EXPUNGE (own and others') is VANISHED, and OK carries HIGHESTMODSEQ."""
    store = with_messages(3)
    client = _qresync_client(store)
    client.select()
    client.send("a1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert client.lines("a2 EXPUNGE") == [
        "* VANISHED 2",
        "a2 OK [HIGHESTMODSEQ 6] EXPUNGE completed",
    ]
    other = Client(store)
    other.login()
    other.select()
    other.send("b1 STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    other.send("b2 EXPUNGE")
    assert client.lines("a3 NOOP") == ["* VANISHED 1,3", "a3 OK NOOP completed"]


def test_uid_fetch_changedsince_vanished() -> None:
    """UID FETCH (CHANGEDSINCE n VANISHED) lists expunged UIDs of the set first."""
    client = _qresync_client(_changed_store())
    client.select()
    assert client.lines("f1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)") == [
        "* VANISHED (EARLIER) 1",
        "* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (7))",
        "f1 OK UID FETCH completed",
    ]
    assert client.lines("f2 UID FETCH 2:3 (FLAGS) (CHANGEDSINCE 4 VANISHED)")[0] == (
        "* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (7))"
    )


def test_vanished_modifier_errors() -> None:
    """VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled."""
    client = Client(_changed_store())
    client.login()
    client.select()
    assert client.lines("f1 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")[0].startswith("f1 BAD")
    assert client.lines("f2 UID FETCH 1 (FLAGS) (VANISHED)")[0].startswith("f2 BAD")
    out = client.lines("f3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert out == ["f3 BAD QRESYNC is not enabled"]


def test_reselect_says_closed() -> None:
    """Selecting another mailbox first reports OK [CLOSED] (RFC 7162 §3.2.11)."""
    client = _qresync_client(with_messages(1))
    client.select()
    out = client.lines("s2 SELECT Sent")
    assert out[0] == "* OK [CLOSED] Previous mailbox closed"


def test_move_under_qresync_ends_with_highestmodseq() -> None:
    """MOVE reports VANISHED and ends with HIGHESTMODSEQ, as EXPUNGE does (RFC 6851 §4.4)."""
    store = with_messages(3)
    client = _qresync_client(store)
    client.lines("s1 SELECT INBOX")
    out = client.lines("m1 MOVE 2:3 Trash")
    assert out[-2] == "* VANISHED 2:3"
    before = int(out[-1].split("HIGHESTMODSEQ ")[1].split("]")[0])
    assert out[-1] == f"m1 OK [HIGHESTMODSEQ {before}] MOVE completed"
    client.send("s2 STORE 1 +FLAGS.SILENT (\\Deleted)")
    expunged = client.lines("x1 EXPUNGE")
    assert expunged[-1].startswith("x1 OK [HIGHESTMODSEQ ")
    assert int(expunged[-1].split("HIGHESTMODSEQ ")[1].split("]")[0]) > before
