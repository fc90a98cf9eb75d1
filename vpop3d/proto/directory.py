"""The pure side of the LDAP service: DNs, search filters, scopes, attribute selection
and ordering over an in-memory list of directory entries.

Nothing here knows BER or ldaptor (``proto/ldap.py`` decodes into these types) or
the store (the directory view comes in through :class:`Directory`). The address
book is small, so a search evaluates the filter over every entry the view returns.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Protocol

from twisted.internet.defer import Deferred

__all__ = [
    "And",
    "Approx",
    "Directory",
    "DirectoryEntry",
    "Equal",
    "Filter",
    "GreaterOrEqual",
    "InvalidDN",
    "LessOrEqual",
    "NormalDN",
    "Not",
    "Or",
    "Present",
    "Scope",
    "SortKey",
    "Substrings",
    "Unsupported",
    "in_scope",
    "matches",
    "normalise_dn",
    "parent_dn",
    "select_attributes",
    "sort_entries",
]


class DirectoryEntry(Protocol):
    """One entry as the directory view hands it over."""

    @property
    def dn(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def login(self) -> str | None:
        """The local user name a simple bind to this DN checks, or None."""


class Directory(Protocol):
    """The read-only directory the LDAP service publishes."""

    @property
    def naming_context(self) -> str:
        """The suffix of the tree, e.g. ``O=VPOP3``."""

    def entries(self) -> Deferred[Sequence[DirectoryEntry]]:
        """Every entry of the tree, containers included, in a stable order."""


class Scope(enum.IntEnum):
    """RFC 4511 §4.5.1.2."""

    BASE = 0
    ONE = 1
    SUB = 2


class InvalidDN(ValueError):
    """Text that is not an RFC 4514 distinguished name."""


# --------------------------------------------------------------------------- DNs

NormalDN = tuple[tuple[tuple[str, str], ...], ...]  # RDNs, each a sorted set of (type, value)


def _split_unescaped(text: str, separators: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise InvalidDN("dangling backslash")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    raw = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char != "\\":
            raw += char.encode()
            index += 1
            continue
        pair = value[index + 1 : index + 3]
        if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            raw.append(int(pair, 16))
            index += 3
        else:
            raw += value[index + 1].encode()
            index += 2
    return raw.decode("utf-8", errors="replace")


@lru_cache(maxsize=16384)  # entry DNs repeat in every search
def normalise_dn(text: str) -> NormalDN:
    """Parse an RFC 4514 DN for comparison: types and values folded to lower case.

    Every attribute we publish matches case-insensitively (caseIgnoreMatch), so
    ``uid=Fred, ou=users ,O=VPOP3`` and ``UID=fred,OU=Users,O=VPOP3`` are equal.
    """
    if not text.strip():
        return ()
    rdns: list[tuple[tuple[str, str], ...]] = []
    for rdn in _split_unescaped(text, ",;"):
        pairs: list[tuple[str, str]] = []
        for ava in _split_unescaped(rdn, "+"):
            kind, eq, value = ava.partition("=")
            kind = kind.strip()
            if not eq or not kind:
                raise InvalidDN(f"not an attribute=value pair: {ava!r}")
            value = value.strip()
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                value = value[1:-1]  # RFC 2253 quoting, still sent by old clients
            pairs.append((kind.lower(), _unescape(value).casefold().strip()))
        rdns.append(tuple(sorted(pairs)))
    return tuple(rdns)


def parent_dn(dn: NormalDN) -> NormalDN:
    return dn[1:]


def in_scope(entry: NormalDN, base: NormalDN, scope: Scope) -> bool:
    """RFC 4511 §4.5.1.2: is ``entry`` inside the search scope rooted at ``base``?"""
    if scope is Scope.BASE:
        return entry == base
    depth = len(entry) - len(base)
    if depth < 0 or entry[depth:] != base:
        return False
    if scope is Scope.ONE:
        return depth == 1
    return True  # the subtree includes the base entry itself


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


@dataclass(frozen=True, slots=True)
class Equal:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Approx:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class GreaterOrEqual:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class LessOrEqual:
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Substrings:
    attribute: str
    initial: str | None
    any: tuple[str, ...]
    final: str | None


@dataclass(frozen=True, slots=True)
class Present:
    attribute: str


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A filter item we cannot evaluate (extensibleMatch): always Undefined."""

    what: str


Filter = (
    And
    | Or
    | Not
    | Equal
    | Approx
    | GreaterOrEqual
    | LessOrEqual
    | Substrings
    | Present
    | Unsupported
)


def _values(entry: DirectoryEntry, attribute: str) -> list[str] | None:
    """Case-folded values of ``attribute`` (None: the entry has no such attribute)."""
    wanted = attribute.lower()
    for name, values in entry.attributes.items():
        if name.lower() == wanted:
            return [v.casefold() for v in values]
    return None


def _substring_match(value: str, item: Substrings) -> bool:
    position = 0
    if item.initial is not None:
        if not value.startswith(item.initial.casefold()):
            return False
        position = len(item.initial)
    for part in item.any:
        found = value.find(part.casefold(), position)
        if found < 0:
            return False
        position = found + len(part)
    if item.final is not None:
        final = item.final.casefold()
        return len(value) - len(final) >= position and value.endswith(final)
    return True


def matches(item: Filter, entry: DirectoryEntry) -> bool | None:
    """RFC 4511 §4.5.1.7: True, False or Undefined (None), caseIgnore matching."""
    if isinstance(item, And):
        results = [matches(part, entry) for part in item.items]
        if False in results:
            return False
        return None if None in results else True
    if isinstance(item, Or):
        results = [matches(part, entry) for part in item.items]
        if True in results:
            return True
        return None if None in results else False
    if isinstance(item, Not):
        inner = matches(item.item, entry)
        return None if inner is None else not inner
    if isinstance(item, Unsupported):
        return None
    values = _values(entry, item.attribute)
    if isinstance(item, Present):
        return values is not None
    if values is None:
        return False
    if isinstance(item, Substrings):
        return any(_substring_match(v, item) for v in values)
    wanted = item.value.casefold()
    if isinstance(item, Equal | Approx):
        return wanted in values
    if isinstance(item, GreaterOrEqual):
        return any(v >= wanted for v in values)
    return any(v <= wanted for v in values)


# --------------------------------------------------------------------------- results


def select_attributes(
    entry: DirectoryEntry, requested: Sequence[str]
) -> list[tuple[str, Sequence[str]]]:
    """RFC 4511 §4.5.1.8: no list or ``*`` means every user attribute, ``1.1`` none."""
    wanted = {name.lower() for name in requested}
    everything = not wanted or "*" in wanted
    if wanted == {"1.1"}:
        return []
    return [
        (name, values)
        for name, values in entry.attributes.items()
        if values and (everything or name.lower() in wanted)
    ]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One key of the RFC 2891 server-side sort control."""

    attribute: str
    reverse: bool = False


def _sort_value(entry: DirectoryEntry, attribute: str) -> str:
    return min(_values(entry, attribute) or [""])


def sort_entries(
    entries: Sequence[DirectoryEntry], keys: Sequence[SortKey]
) -> list[DirectoryEntry]:
    """RFC 2891 §2.2: order by the keys; an entry without the attribute sorts last."""
    result = list(entries)
    for key in reversed(keys):  # stable sorts, least significant key first
        present = [e for e in result if _values(e, key.attribute)]
        absent = [e for e in result if not _values(e, key.attribute)]
        present.sort(key=partial(_sort_value, attribute=key.attribute), reverse=key.reverse)
        result = present + absent
    return result
