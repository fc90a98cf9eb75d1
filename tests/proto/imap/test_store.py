"""STORE and UID STORE: replace, add, remove, .SILENT, keywords."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, with_messages


def _client(count: int = 3) -> Client:
    client = Client(with_messages(count))
    client.login()
    client.select()
    return client


def test_add_flags_reports_new_flags() -> None:
    """+FLAGS answers with the resulting FLAGS of each message."""
    client = _client()
    assert client.lines("a1 STORE 1:2 +FLAGS (\\Seen \\Flagged)") == [
        "* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))",
        "* 2 FETCH (FLAGS (\\Flagged \\Seen \\Recent))",
        "a1 OK STORE completed",
    ]


def test_remove_and_replace_flags() -> None:
    """-FLAGS removes; FLAGS replaces the whole set."""
    client = _client()
    client.send("a1 STORE 1 +FLAGS (\\Seen \\Flagged)")
    assert client.lines("a2 STORE 1 -FLAGS (\\Seen)")[0] == "* 1 FETCH (FLAGS (\\Flagged \\Recent))"
    assert (
        client.lines("a3 STORE 1 FLAGS (\\Answered)")[0]
        == "* 1 FETCH (FLAGS (\\Answered \\Recent))"
    )


def test_silent_store_sends_nothing() -> None:
    """FLAGS.SILENT changes flags without FETCH responses."""
    client = _client()
    assert client.send("a1 STORE 1 +FLAGS.SILENT (\\Deleted)") == "a1 OK STORE completed\r\n"
    assert client.store.folders["INBOX"].messages[1].flags == frozenset({"\\Deleted"})


def test_uid_store_includes_uid() -> None:
    """UID STORE responses carry the UID."""
    client = _client()
    assert client.lines("a1 UID STORE 3 +FLAGS (\\Seen)")[0] == (
        "* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))"
    )


def test_keywords_are_stored() -> None:
    """Keywords ($Label1) are kept like system flags."""
    client = _client()
    lines = client.lines("a1 STORE 1 +FLAGS ($Label1 Work)")
    assert lines[2] == "* 1 FETCH (FLAGS ($Label1 Work \\Recent))"


def test_recent_cannot_be_stored() -> None:
    """\\Recent in a STORE or APPEND is BAD and changes nothing (RFC 3501 §2.3.2)."""
    client = _client()
    assert client.send("a1 STORE 1 +FLAGS (\\Recent)").startswith("a1 BAD ")
    assert client.send("a2 STORE 1 FLAGS \\Seen \\Recent").startswith("a2 BAD ")
    assert client.store.folders["INBOX"].messages[1].flags == frozenset()
    count = len(client.store.folders["INBOX"].messages)
    assert client.send("a3 APPEND INBOX (\\Recent) {2+}\r\nhi").startswith("a3 BAD ")
    assert len(client.store.folders["INBOX"].messages) == count


def test_store_bad_syntax() -> None:
    """A STORE without a flags item is BAD."""
    client = _client()
    assert client.send("a1 STORE 1 LABELS (x)").startswith("a1 BAD ")
    assert client.send("a2 STORE 0 +FLAGS (\\Seen)").startswith("a2 BAD ")


def test_flag_changes_reach_other_session_on_noop() -> None:
    """Another session learns of the change as an unsolicited FETCH FLAGS."""
    store = with_messages(2)
    first, second = Client(store), Client(store)
    for client in (first, second):
        client.login()
        client.select()
    first.send("a1 STORE 2 +FLAGS (\\Flagged)")
    assert second.lines("b1 NOOP") == [
        "* 2 FETCH (UID 2 FLAGS (\\Flagged))",
        "b1 OK NOOP completed",
    ]
    assert second.lines("b2 NOOP") == ["b2 OK NOOP completed"]


def test_new_keyword_announced_with_flags_response() -> None:
    """A keyword new to the mailbox triggers FLAGS and PERMANENTFLAGS (RFC 3501 §7.2.6)."""
    client = _client()
    lines = client.lines("a1 STORE 1 +FLAGS ($Label1)")
    assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"
    assert lines[1].startswith("* OK [PERMANENTFLAGS (\\Answered")
    assert "$Label1 \\*" in lines[1]
    assert client.lines("a2 STORE 2 +FLAGS ($Label1)")[0].startswith("* 2 FETCH")


def test_select_lists_keywords_in_use() -> None:
    """SELECT's FLAGS include keywords already on messages."""
    store = with_messages(1)
    store.folders["INBOX"].messages[1].flags = frozenset({"Work"})
    client = Client(store)
    client.login()
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Work)" in client.select()
