"""IMAP4rev2 (RFC 9051) once enabled, LIST-EXTENDED (RFC 5258), and rev1 left unchanged."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, message, with_messages


def _client(count: int = 3, rev2: bool = True) -> Client:
    client = Client(with_messages(count))
    client.login()
    if rev2:
        assert client.lines("e1 ENABLE IMAP4rev2") == [
            "* ENABLED IMAP4rev2",
            "e1 OK ENABLE completed",
        ]
    return client


def test_rev2_advertised_next_to_rev1() -> None:
    """Both IMAP4rev1 and IMAP4rev2 are advertised, before and after login."""
    client = Client(with_messages(0))
    assert "CAPABILITY IMAP4rev1 IMAP4rev2 " in client.greeting
    client.login()
    caps = client.lines("c1 CAPABILITY")[0].split()
    assert {"IMAP4rev1", "IMAP4rev2", "BINARY", "SEARCHRES", "LIST-EXTENDED"} <= set(caps)


def test_enable_is_case_insensitive_and_only_when_authenticated() -> None:
    """ENABLE imap4rev2 works in any case; before login it is refused."""
    client = Client(with_messages(0))
    assert client.send("e0 ENABLE IMAP4rev2").startswith("e0 BAD")
    client.login()
    assert client.lines("e1 ENABLE imap4REV2")[0] == "* ENABLED IMAP4rev2"


def test_select_in_rev2() -> None:
    """rev2 SELECT: no RECENT, no UNSEEN code, a LIST response for the mailbox (§6.3.2)."""
    client = _client()
    out = client.select()
    assert "RECENT" not in out
    assert "[UNSEEN" not in out
    assert '* LIST () "/" "INBOX"\r\n' in out
    assert "* 3 EXISTS\r\n" in out
    for code in ("[UIDVALIDITY ", "[UIDNEXT ", "[PERMANENTFLAGS "):
        assert code in out


def test_select_in_rev1_unchanged() -> None:
    """A rev1 session still gets RECENT and UNSEEN and no LIST in SELECT."""
    client = _client(rev2=False)
    out = client.select()
    assert "* 3 RECENT\r\n" in out
    assert "[UNSEEN 1]" in out
    assert "* LIST" not in out


def test_no_recent_flag_in_rev2() -> None:
    """FETCH FLAGS never shows \\Recent after ENABLE IMAP4rev2 (RFC 9051 Appendix E)."""
    client = _client()
    client.select()
    assert client.lines("f1 FETCH 1 FLAGS")[0] == "* 1 FETCH (FLAGS ())"
    rev1 = _client(rev2=False)
    rev1.select()
    assert rev1.lines("f1 FETCH 1 FLAGS")[0] == "* 1 FETCH (FLAGS (\\Recent))"


def test_new_mail_without_recent_response() -> None:
    """Arrivals are announced with EXISTS only, no RECENT, in rev2."""
    client = _client()
    client.select()
    client.store.folders["INBOX"].add(message("new"))
    client.store.folders["INBOX"].notify()
    out = client.send("n1 NOOP")
    assert "* 4 EXISTS\r\n" in out
    assert "RECENT" not in out


def test_search_answers_with_esearch() -> None:
    """rev2 SEARCH and UID SEARCH answer with ESEARCH, ALL when no RETURN (§6.4.4)."""
    client = _client()
    client.select()
    client.send("t1 STORE 2 +FLAGS (\\Flagged)")
    assert client.lines("s1 SEARCH UNFLAGGED") == [
        '* ESEARCH (TAG "s1") ALL 1,3',
        "s1 OK SEARCH completed",
    ]
    assert client.lines("s2 UID SEARCH FLAGGED")[0] == '* ESEARCH (TAG "s2") UID ALL 2'
    assert client.lines("s3 SEARCH SUBJECT none-of-these")[0] == '* ESEARCH (TAG "s3")'
    assert client.lines("s4 SEARCH RETURN (COUNT) ALL")[0] == '* ESEARCH (TAG "s4") COUNT 3'


def test_search_in_rev1_unchanged() -> None:
    """Without ENABLE IMAP4rev2 SEARCH still answers with SEARCH."""
    client = _client(rev2=False)
    client.select()
    assert client.lines("s1 SEARCH ALL")[0] == "* SEARCH 1 2 3"


def test_utf8_mailbox_names_in_rev2() -> None:
    """rev2 names are UTF-8 both ways, never modified UTF-7 (RFC 9051 §5.1)."""
    client = _client()
    assert "c1 OK" in client.send('c1 CREATE "Entwürfe"')
    assert "Entwürfe" in client.store.folders
    assert '* LIST (\\HasNoChildren) "/" "Entwürfe"' in client.lines('l1 LIST "" Entw*')
    rev1 = _client(rev2=False)
    rev1.send("c1 CREATE Entw&APw-rfe")
    assert '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"' in rev1.lines('l1 LIST "" Entw*')


def test_select_closed_code_and_uid_expunge() -> None:
    """Re-selecting sends OK [CLOSED]; UID EXPUNGE removes only the named messages."""
    client = _client()
    client.select()
    assert "* OK [CLOSED]" in client.send("x1 EXAMINE INBOX")
    client.select()
    client.send("t1 STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert client.lines("e1 UID EXPUNGE 2") == ["* 2 EXPUNGE", "e1 OK EXPUNGE completed"]


def test_status_deleted_and_size() -> None:
    """STATUS DELETED and SIZE count \\Deleted messages and octets (RFC 9051 §6.3.11)."""
    client = _client()
    client.select()
    client.send("t1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    out = client.lines("s1 STATUS INBOX (MESSAGES DELETED)")
    assert out[0] == '* STATUS "INBOX" (MESSAGES 3 DELETED 1)'


def test_binary_fetch_in_rev2() -> None:
    """FETCH BINARY is available in rev2 (mandatory there)."""
    client = _client()
    client.select()
    out = client.lines("f1 FETCH 1 (BINARY.SIZE[1])")
    assert out[0] == "* 1 FETCH (BINARY.SIZE[1] 11)"


# ----------------------------------------------------------------- LIST-EXTENDED


def _subscribed_client() -> Client:
    client = _client()
    for name in ("Work", "Work/Plans", "Play/Games"):
        client.send(f"c1 CREATE {name}")
    client.send("d1 DELETE Play/Games")
    client.send("d2 DELETE Play")
    for name in ("INBOX", "Work/Plans", "Play/Games"):
        client.send(f"s1 SUBSCRIBE {name}")
    return client


def test_list_subscribed_selection_marks_nonexistent() -> None:
    """LIST (SUBSCRIBED) lists subscriptions, \\NonExistent for vanished ones (RFC 5258)."""
    client = _subscribed_client()
    assert client.lines('l1 LIST (SUBSCRIBED) "" *') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
        '* LIST (\\NonExistent \\Subscribed) "/" "Play/Games"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "Work/Plans"',
        "l1 OK LIST completed",
    ]


def test_list_recursivematch_childinfo() -> None:
    """RECURSIVEMATCH returns parents of subscribed children with CHILDINFO."""
    client = _subscribed_client()
    lines = client.lines('l1 LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert lines == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
        '* LIST (\\NonExistent) "/" "Play" ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))',
        "l1 OK LIST completed",
    ]


def test_list_return_subscribed_and_several_patterns() -> None:
    """RETURN (SUBSCRIBED) adds \\Subscribed; a pattern list unions its matches."""
    client = _subscribed_client()
    lines = client.lines('l1 LIST "" (INBOX "Work/*") RETURN (SUBSCRIBED CHILDREN)')
    assert lines == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "Work/Plans"',
        "l1 OK LIST completed",
    ]


def test_list_extended_status_return() -> None:
    """RETURN (STATUS ...) works with the extended forms too."""
    client = _subscribed_client()
    lines = client.lines('l1 LIST (SUBSCRIBED) "" INBOX RETURN (STATUS (MESSAGES))')
    assert lines[1] == '* STATUS "INBOX" (MESSAGES 3)'


def test_list_extended_bad_options() -> None:
    """Unknown options and RECURSIVEMATCH on its own are BAD (RFC 5258 §3)."""
    client = _client()
    for line in (
        'b1 LIST (RECURSIVEMATCH) "" *',
        'b2 LIST (FOO) "" *',
        'b3 LIST "" * RETURN (FOO)',
        'b4 LIST "" ()',
    ):
        assert client.send(line).startswith(line[:2] + " BAD"), line


def test_plain_list_unchanged() -> None:
    """A LIST without extended options keeps the RFC 3501 answer (no \\Subscribed)."""
    client = _subscribed_client()
    lines = client.lines('l1 LIST "" %')
    assert '* LIST (\\HasNoChildren) "/" "INBOX"' in lines
    assert '* LIST (\\HasChildren) "/" "Work"' in lines
    assert not any('"Play' in line for line in lines)
