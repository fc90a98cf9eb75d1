"""SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) and the "$" saved result."""

from __future__ import annotations

import pytest

from tests.proto.imap.fakes import Client, with_messages
from vpop3d.core.seqset import SeqSet
from vpop3d.proto.imap.grammar import Fetch, ParseError, Search, is_saved_result, parse_command


def _client(count: int = 6) -> Client:
    store = with_messages(count)
    inbox = store.folders["INBOX"]
    for uid in (2, 4, 5):
        inbox.messages[uid].flags = frozenset({"\\Flagged"})
    client = Client(store)
    client.login()
    client.select()
    return client


def test_searchres_advertised() -> None:
    """SEARCHRES is in the capability list once logged in."""
    client = _client()
    assert " SEARCHRES" in client.lines("c1 CAPABILITY")[0]


def test_save_alone_sends_no_esearch() -> None:
    """RETURN (SAVE) alone answers with nothing but the tagged OK (RFC 5182 §2)."""
    client = _client()
    assert client.lines("s1 SEARCH RETURN (SAVE) FLAGGED") == ["s1 OK SEARCH completed"]


def test_fetch_dollar_uses_the_saved_result() -> None:
    """FETCH $ and UID FETCH $ name the saved messages."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    assert client.lines("f1 FETCH $ (FLAGS)") == [
        "* 2 FETCH (FLAGS (\\Flagged \\Recent))",
        "* 4 FETCH (FLAGS (\\Flagged \\Recent))",
        "* 5 FETCH (FLAGS (\\Flagged \\Recent))",
        "f1 OK FETCH completed",
    ]
    assert (
        client.lines("f2 UID FETCH $ (FLAGS)")[0] == "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"
    )


def test_save_with_other_options_reports_them() -> None:
    """SAVE with ALL or COUNT still answers ESEARCH with those, and saves every match."""
    client = _client()
    assert client.lines("s1 UID SEARCH RETURN (SAVE COUNT) FLAGGED") == [
        '* ESEARCH (TAG "s1") UID COUNT 3',
        "s1 OK UID SEARCH completed",
    ]
    assert client.lines("s2 SEARCH RETURN (COUNT) $")[0] == '* ESEARCH (TAG "s2") COUNT 3'


def test_save_with_min_max_keeps_only_those() -> None:
    """With MIN/MAX but no ALL/COUNT only the min and max messages are saved."""
    client = _client()
    assert client.lines("s1 SEARCH RETURN (MIN MAX SAVE) FLAGGED")[0] == (
        '* ESEARCH (TAG "s1") MIN 2 MAX 5'
    )
    assert client.lines("s2 SEARCH $")[0] == "* SEARCH 2 5"
    client.send("s3 SEARCH RETURN (SAVE MIN) FLAGGED")
    assert client.lines("s4 SEARCH $")[0] == "* SEARCH 2"


def test_dollar_in_search_keys() -> None:
    """$ works as a search key, bare or after UID, and combines with other keys."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    assert client.lines("s2 SEARCH $ 3:4")[0] == "* SEARCH 4"
    assert client.lines("s3 UID SEARCH NOT UID $")[0] == "* SEARCH 1 3 6"
    assert client.lines("s4 SEARCH OR $ 1")[0] == "* SEARCH 1 2 4 5"


def test_search_can_refine_its_own_saved_result() -> None:
    """A SAVE search may use $ itself: the old result feeds it, then is replaced."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    assert client.lines("s2 SEARCH RETURN (SAVE) $ 4:*") == ["s2 OK SEARCH completed"]
    assert client.lines("s3 SEARCH $")[0] == "* SEARCH 4 5"


def test_store_copy_move_with_dollar() -> None:
    """STORE, COPY and MOVE accept $ as their message set."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) 1:2")
    out = client.lines("t1 STORE $ +FLAGS (\\Seen)")
    assert out[-1] == "t1 OK STORE completed"
    assert len(out) == 3
    assert "c1 OK [COPYUID" in client.send('c1 COPY $ "Archive"')
    assert len(client.store.folders["Archive"].messages) == 2
    out = client.lines("m1 UID MOVE $ Trash")
    assert out[-3:] == ["* 2 EXPUNGE", "* 1 EXPUNGE", "m1 OK UID MOVE completed"]


def test_expunged_messages_leave_the_saved_result() -> None:
    """Messages expunged after the SAVE are no longer named by $."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    client.send("t1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    client.send("e1 EXPUNGE")
    assert client.lines("s2 UID SEARCH $")[0] == "* SEARCH 4 5"
    assert client.lines("f1 FETCH $ (UID)")[:2] == ["* 3 FETCH (UID 4)", "* 4 FETCH (UID 5)"]


def test_empty_saved_result() -> None:
    """Before any SAVE (and after a SAVE matching nothing) $ names no messages."""
    client = _client()
    assert client.lines("f1 FETCH $ (FLAGS)") == ["f1 OK FETCH completed"]
    client.send("s1 SEARCH RETURN (SAVE) SUBJECT nothing-matches")
    assert client.lines("s2 SEARCH $") == ["* SEARCH", "s2 OK SEARCH completed"]
    assert client.lines("t1 STORE $ +FLAGS (\\Seen)") == ["t1 OK STORE completed"]


def test_select_and_unselect_reset_the_saved_result() -> None:
    """SELECT, EXAMINE and UNSELECT forget the saved result."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    client.send("x1 EXAMINE INBOX")
    assert client.lines("s2 SEARCH $")[0] == "* SEARCH"
    client.send("s3 SEARCH RETURN (SAVE) FLAGGED")
    client.send("u1 UNSELECT")
    client.select()
    assert client.lines("s4 SEARCH $")[0] == "* SEARCH"


def test_failed_save_empties_the_result() -> None:
    """A SEARCH RETURN (SAVE) that fails with NO leaves $ empty."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    out = client.send("s2 SEARCH RETURN (SAVE) CHARSET KOI8-R FLAGGED")
    assert out.startswith("s2 NO [BADCHARSET")
    assert client.lines("s3 SEARCH $")[0] == "* SEARCH"


def test_failed_search_without_save_keeps_the_result() -> None:
    """A failing SEARCH that does not SAVE leaves $ alone."""
    client = _client()
    client.send("s1 SEARCH RETURN (SAVE) FLAGGED")
    assert client.send("s2 SEARCH CHARSET KOI8-R ALL").startswith("s2 NO")
    assert client.lines("s3 SEARCH $")[0] == "* SEARCH 2 4 5"


def test_dollar_syntax_errors() -> None:
    """$ stands alone: '$,1', '$:3' and '1,$' are BAD; $ outside a mailbox is refused."""
    client = _client()
    for line in ("b1 FETCH $,1 FLAGS", "b2 FETCH $:3 FLAGS", "b3 FETCH 1,$ FLAGS"):
        assert client.send(line).startswith(line[:2] + " BAD"), line
    client.send("u1 UNSELECT")
    assert client.send("b4 FETCH $ FLAGS").startswith("b4 BAD")


def test_grammar_marks_dollar_as_the_saved_result() -> None:
    """The parser turns "$" into the saved-result marker wherever a sequence set may be."""
    fetch = parse_command(b"a UID FETCH $ (FLAGS)").command
    assert isinstance(fetch, Fetch)
    assert is_saved_result(fetch.messages)
    search = parse_command(b"a SEARCH RETURN (SAVE MIN) UID $").command
    assert isinstance(search, Search)
    assert search.returns == ("SAVE", "MIN")
    assert not is_saved_result(SeqSet.parse("1:*"))


def test_dollar_not_allowed_in_qresync_known_uids() -> None:
    """QRESYNC's known-uids is a plain set: "$" there is a syntax error."""
    with pytest.raises(ParseError):
        parse_command(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 $))")
