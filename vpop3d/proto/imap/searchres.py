"""SEARCHRES (RFC 5182): ``SEARCH RETURN (SAVE)`` and the ``$`` it fills.

The session keeps the saved result as UIDs on its view of the selected mailbox, so it
starts empty on every SELECT/EXAMINE and dies with UNSELECT/CLOSE (RFC 5182 §2), and
expunged messages drop out of it by themselves. Sequence sets ``$`` are resolved by the
view; inside SEARCH keys they are replaced here, before the search runs, so a search
may both use and replace the saved result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vpop3d.core import imapsearch as q
from vpop3d.core.seqset import SeqSet
from vpop3d.proto.imap.grammar import Command, Search, Sort, Thread, is_saved_result

_EVERY = frozenset({"ALL", "COUNT"})
_ENDS = frozenset({"MIN", "MAX"})


def saves(command: Command) -> bool:
    """True for a SEARCH with the SAVE result option."""
    return isinstance(command, Search) and "SAVE" in (command.returns or ())


def substitute(key: q.SearchKey, saved: Sequence[int]) -> q.SearchKey:
    """``key`` with each ``$`` (bare or after UID) replaced by the saved UIDs."""
    if isinstance(key, q.SequenceSet | q.UID):
        value = key.seqs if isinstance(key, q.SequenceSet) else key.uids
        if is_saved_result(value):
            # $ names messages, not numbers: the UIDs select them exactly.
            return q.UID(SeqSet.from_numbers(saved)) if saved else q.Not(q.All())
        return key
    if isinstance(key, q.Not):
        return q.Not(substitute(key.key, saved))
    if isinstance(key, q.Or):
        return q.Or(substitute(key.left, saved), substitute(key.right, saved))
    if isinstance(key, q.And):
        return q.And(tuple(substitute(k, saved) for k in key.keys))
    return key


def bind(command: Command, saved: Sequence[int]) -> Command:
    """SEARCH, SORT or THREAD with ``$`` resolved against ``saved``."""
    if isinstance(command, Search | Sort | Thread):
        return dataclasses.replace(command, key=substitute(command.key, saved))
    return command


def saved_uids(returns: Sequence[str], uids: Sequence[int]) -> list[int]:
    """What SAVE keeps of the matching ``uids`` (ascending), per RFC 5182 §2.

    With MIN and/or MAX but neither ALL nor COUNT only those messages are saved;
    otherwise all matches are.
    """
    options = set(returns)
    if not uids or options & _EVERY or not options & _ENDS:
        return list(uids)
    kept = []
    if "MIN" in options:
        kept.append(uids[0])
    if "MAX" in options and uids[-1] not in kept:
        kept.append(uids[-1])
    return kept


def reported(returns: Sequence[str] | None, rev2: bool) -> tuple[str, ...] | None:
    """The ESEARCH result options to answer with, or None for the old SEARCH response.

    RFC 9051 §6.4.4 answers every rev2 SEARCH with ESEARCH (ALL when no RETURN);
    SAVE alone asks for no ESEARCH at all (RFC 5182 §2), shown by an empty tuple.
    """
    if returns is None:
        return ("ALL",) if rev2 else None
    return tuple(r for r in returns if r != "SAVE")
