"""COPY, MOVE and their UID forms with UIDPLUS COPYUID."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, with_messages


def _client(count: int = 3) -> Client:
    client = Client(with_messages(count))
    client.login()
    client.select()
    return client


def test_copy_reports_copyuid() -> None:
    """COPY answers OK [COPYUID uidvalidity source dest] (RFC 4315 §3)."""
    client = _client()
    trash = client.store.folders["Trash"]
    assert client.send("a1 COPY 2:3 Trash") == (
        f"a1 OK [COPYUID {trash.uidvalidity} 2:3 1:2] COPY completed\r\n"
    )
    assert len(trash.messages) == 2
    assert len(client.store.folders["INBOX"].messages) == 3


def test_copy_to_missing_folder_is_trycreate() -> None:
    """Copying to a folder that does not exist is NO [TRYCREATE]."""
    client = _client()
    assert client.send("a1 COPY 1 Nowhere") == "a1 NO [TRYCREATE] No such mailbox\r\n"


def test_copy_keeps_flags() -> None:
    """A copy carries the source message's flags."""
    client = _client()
    client.send("a0 STORE 1 +FLAGS.SILENT (\\Flagged)")
    client.send("a1 COPY 1 Archive")
    assert client.store.folders["Archive"].messages[1].flags == frozenset({"\\Flagged"})


def test_move_expunges_from_source() -> None:
    """MOVE sends COPYUID in an untagged OK, then EXPUNGE for each message (RFC 6851)."""
    client = _client()
    uidvalidity = client.store.folders["Junk"].uidvalidity
    assert client.lines("a1 MOVE 1:2 Junk") == [
        f"* OK [COPYUID {uidvalidity} 1:2 1:2] Moved",
        "* 2 EXPUNGE",
        "* 1 EXPUNGE",
        "a1 OK MOVE completed",
    ]
    assert list(client.store.folders["INBOX"].messages) == [3]
    assert client.lines("a2 FETCH 1 UID")[0] == "* 1 FETCH (UID 3)"


def test_uid_move_with_no_match_is_ok() -> None:
    """UID MOVE of UIDs that do not exist does nothing and says OK."""
    client = _client()
    assert client.send("a1 UID MOVE 90:95 Junk") == "a1 OK UID MOVE completed\r\n"


def test_move_in_read_only_mailbox_refused() -> None:
    """MOVE needs a read-write mailbox."""
    client = Client(with_messages(1))
    client.login()
    client.send("a0 EXAMINE INBOX")
    assert client.send("a1 MOVE 1 Junk").startswith("a1 NO [READ-ONLY]")


def test_other_session_sees_move_as_expunge() -> None:
    """A second session on the source folder gets EXPUNGE on its next NOOP."""
    store = with_messages(2)
    first, second = Client(store), Client(store)
    for client in (first, second):
        client.login()
        client.select()
    first.send("a1 MOVE 1 Junk")
    assert second.lines("b1 NOOP") == ["* 1 EXPUNGE", "b1 OK NOOP completed"]
