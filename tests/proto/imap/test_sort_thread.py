"""SORT and THREAD (RFC 5256), with UID variants and failure replies."""

from __future__ import annotations

from tests.proto.imap.fakes import Client, with_messages


def _raw(
    subject: str,
    sender: str,
    date: str,
    message_id: str,
    references: str = "",
    body: str = "x\r\n",
) -> bytes:
    refs = f"References: {references}\r\n" if references else ""
    return (
        f"From: {sender}\r\nTo: fred@example.test\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: <{message_id}>\r\n{refs}\r\n{body}"
    ).encode()


def _client() -> Client:
    store = with_messages(0)
    inbox = store.folders["INBOX"]
    inbox.add(_raw("Zebra", "carol@b.test", "Mon, 3 Aug 2026 10:00:00 +0000", "a@x"))
    long_body = "a much longer body than the others\r\n" * 4
    inbox.add(
        _raw(
            "Re: Zebra", "alice@b.test", "Tue, 4 Aug 2026 10:00:00 +0000", "b@x", "<a@x>", long_body
        )
    )
    inbox.add(_raw("apple", "bob@b.test", "Sun, 2 Aug 2026 10:00:00 +0000", "c@x"))
    inbox.add(
        _raw("Re: Zebra", "dave@b.test", "Wed, 5 Aug 2026 10:00:00 +0000", "d@x", "<a@x> <b@x>")
    )
    client = Client(store)
    client.login()
    client.select()
    return client


def test_capabilities_name_sort_and_thread() -> None:
    """Once logged in, SORT and both THREAD algorithms are advertised."""
    client = _client()
    caps = client.lines("c1 CAPABILITY")[0]
    for name in ("SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT"):
        assert f" {name}" in caps


def test_sort_by_subject_then_date() -> None:
    """SORT (SUBJECT) uses the base subject, ties broken by sequence number."""
    client = _client()
    out = client.lines("a1 SORT (SUBJECT) UTF-8 ALL")
    assert out == ["* SORT 3 1 2 4", "a1 OK SORT completed"]


def test_sort_reverse_date_and_from() -> None:
    """REVERSE applies to the next criterion only; FROM sorts by mailbox."""
    client = _client()
    assert client.lines("a1 SORT (REVERSE DATE) UTF-8 ALL")[0] == "* SORT 4 2 1 3"
    assert client.lines("a2 SORT (FROM) UTF-8 ALL")[0] == "* SORT 2 3 1 4"
    assert client.lines("a3 SORT (REVERSE SIZE) UTF-8 ALL")[0].startswith("* SORT 2 ")


def test_sort_with_search_keys_and_uid() -> None:
    """The search keys filter first; UID SORT answers with UIDs."""
    client = _client()
    client.send("e1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    client.send("e2 EXPUNGE")
    assert client.lines("a1 SORT (DATE) UTF-8 SUBJECT zebra")[0] == "* SORT 1 3"
    out = client.lines("a2 UID SORT (DATE) UTF-8 SUBJECT zebra")
    assert out == ["* SORT 2 4", "a2 OK UID SORT completed"]


def test_sort_failures() -> None:
    """Unknown criteria are BAD, unknown charsets NO [BADCHARSET], both outside SELECTED too."""
    client = _client()
    assert client.lines("a1 SORT (COLOUR) UTF-8 ALL")[0].startswith("a1 BAD")
    assert client.lines("a2 SORT (REVERSE) UTF-8 ALL")[0].startswith("a2 BAD")
    assert client.lines("a3 SORT DATE UTF-8 ALL")[0].startswith("a3 BAD")
    out = client.lines("a4 SORT (DATE) KOI8-R ALL")
    assert out == ["a4 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"]
    client.send("u1 UNSELECT")
    assert client.lines("a5 SORT (DATE) UTF-8 ALL") == ["a5 BAD No mailbox selected"]


def test_thread_references() -> None:
    """REFERENCES links replies under their parents (RFC 5256 §4 syntax)."""
    client = _client()
    out = client.lines("a1 THREAD REFERENCES UTF-8 ALL")
    assert out == ["* THREAD (3)(1 2 4)", "a1 OK THREAD completed"]


def test_thread_orderedsubject_and_uid() -> None:
    """ORDEREDSUBJECT groups by base subject; UID THREAD reports UIDs."""
    client = _client()
    assert client.lines("a1 THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == "* THREAD (3)(1 (2)(4))"
    client.send("e1 STORE 3 +FLAGS.SILENT (\\Deleted)")
    client.send("e2 EXPUNGE")
    out = client.lines("a2 UID THREAD REFERENCES UTF-8 ALL")
    assert out == ["* THREAD (1 2 4)", "a2 OK UID THREAD completed"]


def test_thread_failures() -> None:
    """An unknown algorithm is BAD; an empty result is an empty THREAD response."""
    client = _client()
    assert client.lines("a1 THREAD BOGUS UTF-8 ALL")[0].startswith("a1 BAD")
    assert client.lines("a2 THREAD REFERENCES UTF-8 SUBJECT nothing")[0] == "* THREAD"


def test_sort_display_from() -> None:
    """SORT=DISPLAY (RFC 5957): DISPLAYFROM sorts by the display name, not the address."""
    store = with_messages(0)
    inbox = store.folders["INBOX"]
    date = "Mon, 3 Aug 2026 10:00:00 +0000"
    inbox.add(_raw("one", '"Zoe Adams" <a@b.test>', date, "1@x"))
    inbox.add(_raw("two", '"Bob Zeller" <z@b.test>', date, "2@x"))
    client = Client(store)
    client.login()
    client.select()
    assert client.lines("a1 SORT (DISPLAYFROM) UTF-8 ALL")[0] == "* SORT 2 1"
    assert client.lines("a2 SORT (FROM) UTF-8 ALL")[0] == "* SORT 1 2"
