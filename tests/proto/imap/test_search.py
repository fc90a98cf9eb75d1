"""SEARCH and UID SEARCH: keys, CHARSET, nesting limits."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from tests.proto.imap.fakes import Client, message, with_messages
from vpop3d.proto.imap.mailbox import MessageData
from vpop3d.proto.imap.server import ConnectionCounter


def _client() -> Client:
    store = with_messages(0)
    inbox = store.folders["INBOX"]
    inbox.add(message("Lunch", "Pizza today\r\n", "alice@b.test"), frozenset({"\\Seen"}))
    inbox.add(message("Report", "Numbers attached\r\n", "bob@b.test"))
    inbox.add(message("Lunch again", "Sushi\r\n", "bob@b.test"), frozenset({"\\Flagged"}))
    client = Client(store)
    client.login()
    client.select()
    return client


def test_search_flags() -> None:
    """Flag keys select by the session's view of flags."""
    client = _client()
    assert client.lines("a1 SEARCH UNSEEN")[0] == "* SEARCH 2 3"
    assert client.lines("a2 SEARCH FLAGGED")[0] == "* SEARCH 3"
    assert client.lines("a3 SEARCH ALL")[0] == "* SEARCH 1 2 3"


def test_search_header_and_body() -> None:
    """SUBJECT, FROM and BODY match substrings case-insensitively."""
    client = _client()
    assert client.lines("a1 SEARCH SUBJECT lunch")[0] == "* SEARCH 1 3"
    assert client.lines("a2 SEARCH FROM BOB")[0] == "* SEARCH 2 3"
    assert client.lines('a3 SEARCH BODY "pizza"')[0] == "* SEARCH 1"


def test_search_or_not_nesting() -> None:
    """OR and NOT combine keys; parentheses group them."""
    client = _client()
    assert client.lines("a1 SEARCH OR SEEN FLAGGED")[0] == "* SEARCH 1 3"
    assert client.lines("a2 SEARCH NOT (SUBJECT lunch)")[0] == "* SEARCH 2"
    assert client.lines("a3 SEARCH (OR 1 3) UNSEEN")[0] == "* SEARCH 3"


def test_uid_search_returns_uids() -> None:
    """UID SEARCH answers with UIDs, and UID ranges are keys."""
    client = _client()
    client.send("a0 STORE 1 +FLAGS.SILENT (\\Deleted)")
    client.send("a0 EXPUNGE")
    assert client.lines("a1 UID SEARCH ALL")[0] == "* SEARCH 2 3"
    assert client.lines("a2 SEARCH UID 3")[0] == "* SEARCH 2"


def test_search_dates_and_sizes() -> None:
    """SINCE/BEFORE use INTERNALDATE; LARGER/SMALLER the size."""
    client = _client()
    assert client.lines("a1 SEARCH SINCE 1-Jul-2026")[0] == "* SEARCH 1 2 3"
    assert client.lines("a2 SEARCH BEFORE 1-Jul-2026")[0] == "* SEARCH"
    assert client.lines("a3 SEARCH LARGER 100000")[0] == "* SEARCH"


def test_search_charset() -> None:
    """CHARSET UTF-8 is accepted; an unknown charset is NO [BADCHARSET]."""
    client = _client()
    assert client.lines("a1 SEARCH CHARSET UTF-8 SUBJECT Report")[0] == "* SEARCH 2"
    assert client.send("a2 SEARCH CHARSET KOI8-R ALL").startswith("a2 NO [BADCHARSET")


def test_search_utf8_literal() -> None:
    """A UTF-8 search string can be sent as a literal."""
    client = _client()
    data = "Überweisung".encode()
    client.raw(b"a1 SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(data))
    assert client.raw(data + b"\r\n").startswith("* SEARCH\r\na1 OK")


def test_search_nesting_limit() -> None:
    """Deeply nested NOT keys are refused as BAD instead of recursing without end."""
    client = _client()
    assert client.send("a1 SEARCH " + "NOT " * 100 + "ALL").startswith("a1 BAD SEARCH nested")


def test_search_bad_key_and_date() -> None:
    """Unknown keys and malformed dates are BAD."""
    client = _client()
    assert client.send("a1 SEARCH FOO").startswith("a1 BAD ")
    assert client.send("a2 SEARCH SINCE 31-Feb-2026").startswith("a2 BAD ")


def test_too_many_concurrent_searches() -> None:
    """A third concurrent SEARCH of one user waits 30 s, then gets the manual's text."""
    counter = ConnectionCounter()
    store = with_messages(1)
    clock = Clock()
    clients = [Client(store, counter=counter, clock=clock) for _ in range(3)]
    for client in clients:
        client.login()
        client.select()
    stalled: Deferred[Sequence[MessageData]] = Deferred()
    for selected in store.selected[:2]:
        selected.load = lambda uids, with_body: stalled  # type: ignore[method-assign]  # stall
    assert clients[0].send("a1 SEARCH BODY x") == ""
    assert clients[1].send("b1 SEARCH BODY x") == ""
    assert clients[2].send("c1 SEARCH BODY x") == ""
    clock.advance(31)
    assert clients[2].take() == "c1 NO [LIMIT] Too many concurrent searches - try again later\r\n"


def test_esearch_return_options() -> None:
    """SEARCH RETURN (MIN MAX COUNT ALL) answers one ESEARCH line (RFC 4731)."""
    client = _client()
    assert client.lines("a1 SEARCH RETURN (MIN MAX COUNT ALL) ALL")[0] == (
        '* ESEARCH (TAG "a1") MIN 1 MAX 3 ALL 1:3 COUNT 3'
    )
    assert client.lines("a2 UID SEARCH RETURN (COUNT) FLAGGED")[0] == (
        '* ESEARCH (TAG "a2") UID COUNT 1'
    )
    assert client.lines("a3 SEARCH RETURN () UNSEEN")[0] == '* ESEARCH (TAG "a3") ALL 2:3'
    assert client.lines("a4 SEARCH RETURN (MIN) SUBJECT nothing-like-this")[0] == (
        '* ESEARCH (TAG "a4")'
    )
    assert client.send("a5 SEARCH RETURN (NOSUCH) ALL").startswith("a5 BAD ")


def test_search_within_older_younger() -> None:
    """WITHIN (RFC 5032): OLDER/YOUNGER n compare INTERNALDATE with now; n is non-zero."""
    client = _client()
    assert "WITHIN" in client.lines("c1 CAPABILITY")[0].split()
    assert client.lines("a1 SEARCH OLDER 86400")[0] == "* SEARCH 1 2 3"  # July 2026
    assert client.lines("a2 SEARCH YOUNGER 86400")[0] == "* SEARCH"
    assert client.lines("a3 SEARCH YOUNGER 3000000000 FLAGGED")[0] == "* SEARCH 3"
    assert client.send("a4 SEARCH OLDER 0").startswith("a4 BAD ")
