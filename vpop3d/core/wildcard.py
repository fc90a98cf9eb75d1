"""The manual's ``*``/``?`` wildcards (reference formats §17): whole-value, caseless.

``*`` matches any run of characters (possibly empty), ``?`` exactly one. There are no
character classes and no escapes: ``[``, ``]``, ``\\`` and ``~`` are literal. That is
why ``fnmatch`` is not used. Matching is linear-time backtracking on the last star,
so a hostile pattern cannot stall a session.
"""

from __future__ import annotations


def has_wildcards(pattern: str) -> bool:
    """True when ``pattern`` contains ``*`` or ``?``."""
    return "*" in pattern or "?" in pattern


def wildcard_match(pattern: str, text: str) -> bool:
    """Whole-value, case-insensitive match of ``text`` against ``pattern``."""
    p = pattern.casefold()
    t = text.casefold()
    i = j = 0
    star = -1
    mark = 0
    while j < len(t):
        if i < len(p) and (p[i] == "?" or p[i] == t[j]):
            i += 1
            j += 1
        elif i < len(p) and p[i] == "*":
            star, mark = i, j
            i += 1
        elif star != -1:
            i = star + 1
            mark += 1
            j = mark
        else:
            return False
    while i < len(p) and p[i] == "*":
        i += 1
    return i == len(p)
