"""CREATE, DELETE, RENAME, LIST, LSUB, SUBSCRIBE, STATUS and NAMESPACE."""

from __future__ import annotations

import pytest

from tests.proto.imap.fakes import Client, with_messages


def _client() -> Client:
    client = Client(with_messages(2))
    client.login()
    return client


def test_list_root_gives_delimiter() -> None:
    """LIST "" "" returns the hierarchy delimiter (RFC 3501 §6.3.8)."""
    client = _client()
    assert client.lines('a1 LIST "" ""') == ['* LIST (\\Noselect) "/" ""', "a1 OK LIST completed"]


def test_list_all_with_special_use_and_children() -> None:
    """LIST "" * shows every folder with SPECIAL-USE and CHILDREN attributes."""
    client = _client()
    client.send("a0 CREATE Projects/2026")
    lines = client.lines('a1 LIST "" *')
    assert lines == [
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        '* LIST (\\Archive \\HasNoChildren) "/" "Archive"',
        '* LIST (\\Drafts \\HasNoChildren) "/" "Drafts"',
        '* LIST (\\Junk \\HasNoChildren) "/" "Junk"',
        '* LIST (\\HasChildren) "/" "Projects"',
        '* LIST (\\HasNoChildren) "/" "Projects/2026"',
        '* LIST (\\Sent \\HasNoChildren) "/" "Sent"',
        '* LIST (\\Trash \\HasNoChildren) "/" "Trash"',
        "a1 OK LIST completed",
    ]


def test_list_percent_stops_at_delimiter() -> None:
    """'%' matches one level only."""
    client = _client()
    client.send("a0 CREATE Projects/2026/Q1")
    assert client.lines('a1 LIST "" Projects/%') == [
        '* LIST (\\HasChildren) "/" "Projects/2026"',
        "a1 OK LIST completed",
    ]


def test_list_special_use_selection() -> None:
    """LIST (SPECIAL-USE) returns only special-use folders (RFC 6154)."""
    client = _client()
    lines = client.lines('a1 LIST (SPECIAL-USE) "" *')
    assert len(lines) == 6
    assert all("\\HasNoChildren" in line for line in lines[:-1])
    assert not any('"INBOX"' in line for line in lines)


def test_list_with_reference() -> None:
    """The reference is prefixed to the pattern."""
    client = _client()
    client.send("a0 CREATE Work/Plans")
    assert client.lines("a1 LIST Work/ *")[0] == '* LIST (\\HasNoChildren) "/" "Work/Plans"'


def test_list_utf7_names() -> None:
    """Non-ASCII names travel in modified UTF-7 both ways."""
    client = _client()
    assert client.send("a1 CREATE &ANw-bersicht").startswith("a1 OK")
    assert "Übersicht" in client.store.folders
    assert '"&ANw-bersicht"' in client.send('a2 LIST "" &ANw-*')


def test_create_existing_and_inbox() -> None:
    """CREATE of an existing folder or of INBOX is NO."""
    client = _client()
    assert client.send("a1 CREATE Sent").startswith("a1 NO [ALREADYEXISTS]")
    assert client.send("a2 CREATE inbox").startswith("a2 NO [CANNOT]")


def test_create_trailing_delimiter() -> None:
    """'CREATE foo/' creates 'foo' (RFC 3501 §6.3.3)."""
    client = _client()
    client.send("a1 CREATE Lists/")
    assert "Lists" in client.store.folders


def test_delete_and_delete_inbox() -> None:
    """DELETE removes a folder; INBOX and missing folders are refused."""
    client = _client()
    assert client.send("a1 DELETE Junk") == "a1 OK DELETE completed\r\n"
    assert "Junk" not in client.store.folders
    assert client.send("a2 DELETE INBOX").startswith("a2 NO [CANNOT]")
    assert client.send("a3 DELETE Junk").startswith("a3 NO [NONEXISTENT]")


def test_rename_moves_children() -> None:
    """RENAME renames inferior folders too."""
    client = _client()
    client.send("a0 CREATE Old/Child")
    assert client.send("a1 RENAME Old New") == "a1 OK RENAME completed\r\n"
    assert {"New", "New/Child"} <= set(client.store.folders)


def test_rename_inbox_moves_messages() -> None:
    """RENAME INBOX moves its messages and leaves INBOX empty (RFC 3501 §6.3.5)."""
    client = _client()
    client.send("a1 RENAME INBOX Saved")
    assert len(client.store.folders["Saved"].messages) == 2
    assert client.store.folders["INBOX"].messages == {}


def test_subscription_survives_delete_and_recreate() -> None:
    """SUBSCRIBE is independent of existence: it survives DELETE and re-CREATE (spec check 36)."""
    client = _client()
    client.send("a1 CREATE Club")
    client.send("a2 SUBSCRIBE Club")
    client.send("a3 DELETE Club")
    assert client.lines('a4 LSUB "" *') == ['* LSUB () "/" "Club"', "a4 OK LSUB completed"]
    client.send("a5 CREATE Club")
    assert client.lines('a6 LSUB "" Cl*')[0] == '* LSUB () "/" "Club"'
    client.send("a7 UNSUBSCRIBE Club")
    assert client.lines('a8 LSUB "" *') == ["a8 OK LSUB completed"]


def test_create_does_not_subscribe() -> None:
    """CREATE leaves subscriptions to the client."""
    client = _client()
    client.send("a1 CREATE Fresh")
    assert client.lines('a2 LSUB "" *') == ["a2 OK LSUB completed"]


def test_status() -> None:
    """STATUS reports the requested counters in order."""
    client = _client()
    assert client.lines("a1 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)") == [
        '* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 UIDNEXT 3 UIDVALIDITY 1001 RECENT 2)',
        "a1 OK STATUS completed",
    ]


def test_status_errors() -> None:
    """STATUS of a missing folder is NO; an unknown item is BAD."""
    client = _client()
    assert client.send("a1 STATUS Nowhere (MESSAGES)").startswith("a1 NO [NONEXISTENT]")
    assert client.send("a2 STATUS INBOX (BOGUS)").startswith("a2 BAD ")


def test_namespace_is_empty_personal() -> None:
    """NAMESPACE reports an empty personal prefix with '/' (spec seed-1 §11.3)."""
    client = _client()
    assert client.lines("a1 NAMESPACE") == [
        '* NAMESPACE (("" "/")) NIL NIL',
        "a1 OK NAMESPACE completed",
    ]


@pytest.mark.parametrize("name", ["a*b", "50%", "/lead", "two//slashes"])
def test_create_refuses_ambiguous_names(name: str) -> None:
    """Names with LIST wildcards or empty levels are refused with NO [CANNOT]."""
    client = _client()
    assert client.send(f'a1 CREATE "{name}"').startswith("a1 NO [CANNOT]")
    assert name not in client.store.folders


def test_list_status() -> None:
    """LIST ... RETURN (STATUS (...)) follows each LIST line with its STATUS (RFC 5819)."""
    client = _client()
    lines = client.lines('a1 LIST "" INBOX RETURN (STATUS (MESSAGES UNSEEN))')
    assert lines == [
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        '* STATUS "INBOX" (MESSAGES 2 UNSEEN 2)',
        "a1 OK LIST completed",
    ]


def test_list_return_special_use_lists_everything() -> None:
    """RETURN (SPECIAL-USE) asks for attributes only; every folder is still listed."""
    client = _client()
    lines = client.lines('a1 LIST "" * RETURN (SPECIAL-USE)')
    assert '* LIST (\\HasNoChildren) "/" "INBOX"' in lines
    assert len(lines) == 7


def test_delete_parent_keeps_name_as_noselect() -> None:
    """DELETE of a mailbox with inferiors succeeds; its name stays as \\Noselect (§6.3.4)."""
    client = _client()
    client.send("a0 CREATE Projects/2026")
    assert client.lines("a1 DELETE Projects") == ["a1 OK DELETE completed"]
    assert client.lines('a2 LIST "" Proj*') == [
        '* LIST (\\Noselect \\HasChildren) "/" "Projects"',
        '* LIST (\\HasNoChildren) "/" "Projects/2026"',
        "a2 OK LIST completed",
    ]
    assert client.send("a3 SELECT Projects").startswith("a3 NO ")
    assert client.send("a4 DELETE Projects").startswith("a4 NO ")


def test_lsub_star_lists_no_unsubscribed_parent() -> None:
    """LSUB "" * names only subscribed mailboxes; "%" shows the parent as \\Noselect (§6.3.9)."""
    client = _client()
    client.send("a0 CREATE Projects/2026")
    client.send("a1 SUBSCRIBE Projects/2026")
    assert client.lines('a2 LSUB "" Proj*') == [
        '* LSUB () "/" "Projects/2026"',
        "a2 OK LSUB completed",
    ]
    assert client.lines('a3 LSUB "" %') == [
        '* LSUB (\\Noselect) "/" "Projects"',
        "a3 OK LSUB completed",
    ]
    assert client.lines('a4 LSUB "" Projects') == ["a4 OK LSUB completed"]
