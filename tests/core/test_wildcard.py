"""The manual's wildcard syntax (reference formats §17, seed-7 check 44-45)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.wildcard import has_wildcards, wildcard_match


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("ca?er", "caper", True),
        ("ca?er", "cater", True),
        ("ca?er", "camper", False),
        ("ca?er", "caer", False),
        ("ca*er", "caper", True),
        ("ca*er", "caer", True),
        ("ca*er", "caterpillar", False),
        ("ca*er*ly", "caerphilly", True),
        ("ca*er*ly", "caleraply", True),
        ("ca*er*ly", "camdfewfqqwfergewgehasdly", True),
        ("CA*ER", "caper", True),
        ("a[b]c", "a[b]c", True),
        ("a[b]c", "abc", False),
        ("*@example.test", "[x]@example.test", True),
        ("", "", True),
        ("", "x", False),
        ("*", "", True),
        ("?", "", False),
        ("127.0.0.*", "127.0.0.9", True),
        ("127.0.0.*", "127.0.1.9", False),
    ],
)
def test_wildcard_table(pattern: str, text: str, expected: bool) -> None:
    """Whole-value, caseless, no character classes."""
    assert wildcard_match(pattern, text) is expected


def test_has_wildcards() -> None:
    """Only * and ? are wildcards."""
    assert has_wildcards("a*")
    assert has_wildcards("a?")
    assert not has_wildcards("a[b]~c")


@given(st.text(max_size=30))
def test_literal_pattern_matches_itself(text: str) -> None:
    """A pattern without wildcards matches exactly its own text."""
    if has_wildcards(text):
        return
    assert wildcard_match(text, text)
    assert wildcard_match("*", text)


def test_pathological_pattern_is_fast() -> None:
    """Many stars against a long non-matching text finish quickly (no backtracking blowup)."""
    assert not wildcard_match("*a*a*a*a*a*a*a*b", "a" * 5000)


@given(
    st.text(alphabet="ab*?", max_size=8),
    st.text(alphabet="ab", max_size=10),
)
def test_matches_regex_translation(pattern: str, text: str) -> None:
    """Property: agrees with an anchored regex where * is .* and ? is ."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    assert wildcard_match(pattern, text) is (re.fullmatch(regex, text, re.DOTALL) is not None)
