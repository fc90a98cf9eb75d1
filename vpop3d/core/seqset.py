"""IMAP sequence sets (RFC 3501 §9 ``sequence-set``) for FETCH, STORE, SEARCH, COPY.

A :class:`SeqSet` keeps the ranges as written, ``None`` standing for ``*``; ``*`` is
only resolved against the mailbox when asked (``contains``/``ranges``) since its
value changes while a session runs. ``$`` (RFC 5182 saved result) is the caller's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# nz-number = digit-nz *DIGIT, at most 2^32-1 (RFC 3501 §9)
_NUMBER = re.compile(r"[1-9][0-9]{0,9}\Z")
_MAX = 4294967295

Bound = int | None  # None is "*"


def _parse_number(text: str) -> Bound:
    if text == "*":
        return None
    if not _NUMBER.match(text) or int(text) > _MAX:
        raise ValueError(f"bad sequence number {text!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class SeqSet:
    """A parsed sequence set: ``((1, None),)`` is ``1:*``, ``((4, 4),)`` is ``4``."""

    items: tuple[tuple[Bound, Bound], ...]

    @classmethod
    def parse(cls, text: str) -> SeqSet:
        """Parse ``1:*``, ``3,5:7``, ``*:4``; raise ``ValueError`` on anything else."""
        if not text:
            raise ValueError("empty sequence set")
        items: list[tuple[Bound, Bound]] = []
        for element in text.split(","):
            first, sep, last = element.partition(":")
            low = _parse_number(first)
            high = _parse_number(last) if sep else low
            items.append((low, high))
        return cls(tuple(items))

    @classmethod
    def from_numbers(cls, numbers: Iterable[int]) -> SeqSet:
        """The compact set of ``numbers`` (COPYUID, ESEARCH, VANISHED responses)."""
        ordered = sorted(set(numbers))
        items: list[tuple[Bound, Bound]] = []
        for number in ordered:
            if items and items[-1][1] == number - 1:
                items[-1] = (items[-1][0], number)
            else:
                items.append((number, number))
        return cls(tuple(items))

    def format(self) -> str:
        """Wire form, e.g. ``1:*`` or ``3,5:7``."""

        def one(value: Bound) -> str:
            return "*" if value is None else str(value)

        return ",".join(
            one(low) if low == high else f"{one(low)}:{one(high)}" for low, high in self.items
        )

    def __str__(self) -> str:
        return self.format()

    def ranges(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged, inclusive ranges with ``*`` read as ``largest``.

        RFC 3501 §9: ``n:m`` may be written in either order. With ``largest`` = 0 (empty
        mailbox) a range containing ``*`` contributes nothing.
        """
        spans: list[tuple[int, int]] = []
        for low, high in self.items:
            if (low is None or high is None) and largest <= 0:
                continue
            a = largest if low is None else low
            b = largest if high is None else high
            spans.append((min(a, b), max(a, b)))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    def contains(self, number: int, largest: int) -> bool:
        """True when ``number`` is in the set, ``*`` being ``largest``."""
        for low, high in self.items:
            if (low is None or high is None) and largest <= 0:
                continue
            a = largest if low is None else low
            b = largest if high is None else high
            if min(a, b) <= number <= max(a, b):
                return True
        return False

    def iter_numbers(self, largest: int, *, limit: int | None = None) -> Iterator[int]:
        """Each member once, ascending, never above ``limit`` (default ``largest``).

        Meant for message sequence numbers; UIDs are sparse, so test existing UIDs
        with ``contains`` instead.
        """
        top = largest if limit is None else limit
        for a, b in self.ranges(largest):
            yield from range(a, min(b, top) + 1)

    def max_number(self, largest: int) -> int:
        """The highest member (0 if empty), used to check a sequence set is in range."""
        spans = self.ranges(largest)
        return spans[-1][1] if spans else 0
