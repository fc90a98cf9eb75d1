"""IMAP sequence sets: vpop3d.core.seqset."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.seqset import SeqSet


def test_parse_and_format_round_trip():
    """Ranges and ``*`` survive parse → format unchanged."""
    for text in ("1:*", "3,5:7", "*:4", "*", "1", "2:2,4"):
        assert SeqSet.parse(text).format() == text.replace("2:2", "2")


@pytest.mark.parametrize("text", ["", "0", "1:", ":3", "a", "$", "1,,2", "1:0", "-1", "4294967296"])
def test_parse_rejects_malformed(text):
    """Zero, empty elements, junk and ``$`` are refused with ValueError."""
    with pytest.raises(ValueError, match="sequence"):
        SeqSet.parse(text)


def test_contains_resolves_star():
    """``*`` is the largest number; ranges work in either order (RFC 3501 §9)."""
    seqs = SeqSet.parse("*:4")
    assert seqs.contains(4, 10)
    assert seqs.contains(10, 10)
    assert not seqs.contains(3, 10)
    assert SeqSet.parse("559:*").contains(100, 100)  # n:* always holds the last UID
    assert not SeqSet.parse("1:*").contains(1, 0)  # empty mailbox: * matches nothing
    assert SeqSet.parse("3,5:7").contains(6, 1)


def test_ranges_merge_and_sort():
    """ranges() gives sorted, merged inclusive spans with * resolved."""
    assert SeqSet.parse("9,1:3,4,*").ranges(12) == [(1, 4), (9, 9), (12, 12)]
    assert SeqSet.parse("1:*").ranges(0) == []
    assert SeqSet.parse("5:7").max_number(3) == 7


def test_iter_numbers_stops_at_largest():
    """iter_numbers lists sequence numbers without running past the mailbox."""
    assert list(SeqSet.parse("2:4,8:*").iter_numbers(9)) == [2, 3, 4, 8, 9]
    assert list(SeqSet.parse("5:20").iter_numbers(7)) == [5, 6, 7]


def test_from_numbers_compacts():
    """from_numbers builds the shortest range list (for COPYUID and ESEARCH)."""
    assert SeqSet.from_numbers([7, 1, 2, 3, 5, 3]).format() == "1:3,5,7"
    assert SeqSet.from_numbers([]).items == ()


@given(st.sets(st.integers(min_value=1, max_value=300)))
def test_from_numbers_membership(numbers):
    """A compacted set contains exactly its numbers, and reparses to the same set."""
    if not numbers:
        return
    seqs = SeqSet.from_numbers(numbers)
    again = SeqSet.parse(seqs.format())
    for candidate in range(1, 302):
        assert again.contains(candidate, 301) == (candidate in numbers)
