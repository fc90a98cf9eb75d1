"""The command grammar: table tests plus properties over arbitrary input."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core import imapsearch as q
from vpop3d.core.seqset import SeqSet
from vpop3d.proto.imap.grammar import (
    Append,
    Fetch,
    FetchItem,
    List,
    Login,
    ParseError,
    Search,
    Section,
    Store,
    format_date_time,
    literal_at_end,
    parse_command,
    parse_date_time,
    tag_of,
)


def test_login_with_quoted_and_literal() -> None:
    """Astrings may be atoms, quoted strings (with escapes) or literals."""
    cmd = parse_command(b'a1 LOGIN "fr\\"ed" {3}\r\nx y').command
    assert cmd == Login('fr"ed', "x y")


def test_fetch_body_section_partial() -> None:
    """BODY.PEEK[1.2.HEADER.FIELDS (A B)]<5.10> parses into its parts."""
    cmd = parse_command(b"t FETCH 1:3,* (UID BODY.PEEK[1.2.HEADER.FIELDS (a B)]<5.10>)").command
    assert isinstance(cmd, Fetch)
    assert cmd.messages == SeqSet(((1, 3), (None, None)))
    assert cmd.items == (
        FetchItem("UID"),
        FetchItem("BODY", Section((1, 2), "HEADER.FIELDS", ("A", "B"), (5, 10), peek=True)),
    )


@pytest.mark.parametrize(
    "line",
    [
        b"t FETCH 0 FLAGS",
        b"t FETCH 1: FLAGS",
        b"t FETCH 1 BODY[HEADER.FIELDS ()]",
        b"t FETCH 1 BODY[1.MIME",
        b"t FETCH 1 (FLAGS",
        b"t STORE 1 +FLAGS",
        b"t LOGIN fred",
        b"t LOGIN fred secret extra",
        b"t UID NOOP",
        b"t SELECT",
        b"t SELECT &Jjo",
        b't LOGIN "unterminated secret',
        b"t LOGIN {5}\r\nab",
    ],
)
def test_malformed_commands(line: bytes) -> None:
    """Malformed commands raise ParseError carrying the tag."""
    with pytest.raises(ParseError) as info:
        parse_command(line)
    assert info.value.tag == "t"


def test_search_tree() -> None:
    """SEARCH builds the imapsearch key tree with And/Or/Not and typed arguments."""
    line = b't SEARCH CHARSET UTF-8 OR FROM "bob" NOT SEEN SINCE 1-Feb-2026 2:4'
    expected = q.And(
        (
            q.Or(q.From("bob"), q.Not(q.Seen())),
            q.Since(date(2026, 2, 1)),
            q.SequenceSet(SeqSet(((2, 4),))),
        )
    )
    assert parse_command(line).command == Search(expected, charset="UTF-8")


def test_uid_commands_are_marked() -> None:
    """UID STORE keeps the uid flag and the silent suffix."""
    cmd = parse_command(b"t UID STORE 5 -FLAGS.SILENT (\\seen $Work)").command
    assert cmd == Store(SeqSet(((5, 5),)), "-", True, ("\\Seen", "$Work"), uid=True)


def test_append_parts() -> None:
    """APPEND takes optional flags and date before the literal."""
    cmd = parse_command(b'a APPEND Sent (\\Seen) " 5-Mar-2024 10:11:12 +0000" {2+}\r\nhi').command
    assert cmd == Append("Sent", ("\\Seen",), datetime(2024, 3, 5, 10, 11, 12, tzinfo=UTC), b"hi")


def test_list_extended_selection() -> None:
    """The (SPECIAL-USE) selection filters; RETURN (SPECIAL-USE) and STATUS do not."""
    assert parse_command(b'a LIST (SPECIAL-USE) "" *').command == List("", "*", False, True)
    assert parse_command(b'a LIST "" % RETURN (SPECIAL-USE)').command == List("", "%", False, False)
    listed = parse_command(b'a LIST "" * RETURN (STATUS (MESSAGES UNSEEN))').command
    assert listed == List("", "*", False, False, ("MESSAGES", "UNSEEN"))


def test_literal_detection() -> None:
    """literal_at_end recognises {n}, {n+} and {n-}."""
    sync = literal_at_end(b"a LOGIN {5}")
    plus = literal_at_end(b"a LOGIN {5+}")
    assert sync is not None
    assert sync.synchronizing
    assert sync.size == 5
    assert plus is not None
    assert not plus.synchronizing
    assert literal_at_end(b"a LOGIN x") is None


def test_tag_of() -> None:
    """Tags stop at the first space and may not contain '+' or specials."""
    assert tag_of(b"A001 NOOP") == "A001"
    assert tag_of(b"+x NOOP") is None
    assert tag_of(b"a*b NOOP") is None


def test_date_time_round_trip() -> None:
    """INTERNALDATE formatting and parsing agree."""
    value = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_date_time(format_date_time(value)) == value


@given(st.binary(max_size=200))
def test_parser_only_raises_parse_error(data: bytes) -> None:
    """Arbitrary bytes either parse or raise ParseError, never anything else."""
    with contextlib.suppress(ParseError):
        parse_command(data)


@given(st.lists(st.sampled_from([b"a1 ", b"FETCH ", b"1:*", b" (", b"BODY[", b"]", b"<1.2>",
                                  b"{3}\r\nabc", b'"q\\"', b"SEARCH ", b"NOT ", b"OR ", b")"]),
                max_size=12))  # fmt: skip
def test_parser_on_token_soup(parts: list[bytes]) -> None:
    """Plausible token sequences never crash the parser."""
    with contextlib.suppress(ParseError):
        parse_command(b"".join(parts))
