"""RFC 4314 access rights for shared IMAP folders: letters, changes, identifiers.

Pure functions only; the app layer stores and resolves rights, the IMAP session
renders them. Rights strings handed out by this module are always canonical: each
letter once, in the order of :data:`ALL` (RFC 4314 §2.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# RFC 4314 §2.1: lookup, read, keep seen, write, insert, post, create (kreate),
# delete mailbox (x), delete messages (t), expunge, administer.
ALL = "lrswipkxtea"
# RFC 4314 §2.1.1: obsolete RFC 2086 rights. We follow the first group of servers:
# "c" is the union of "k" and "x", "d" the union of "e" and "t".
OBSOLETE = {"c": "kx", "d": "et"}
# RFC 4314 §3.4 LISTRIGHTS: each right can be granted on its own here.
OPTIONAL_GROUPS = tuple(ALL)
# Rights that change the selected mailbox; without any of them SELECT is READ-ONLY
# (RFC 4314 §4, SELECT/EXAMINE).
WRITE_RIGHTS = "swte"

USER = "user"
GROUP = "group"
ANYONE = "anyone"
GROUP_PREFIX = "group:"


class RightsError(ValueError):
    """A rights string with a letter RFC 4314 does not define (answered with BAD)."""


class IdentifierError(ValueError):
    """An identifier this server does not accept (answered with NO)."""


def normalise(text: str) -> str:
    """Canonical rights for ``text``: obsolete letters expanded, duplicates dropped.

    RFC 4314 §3.1: an unknown right (including the digits reserved for
    implementations) must fail the command rather than be ignored.
    """
    letters: set[str] = set()
    for char in text:
        if char in ALL:
            letters.add(char)
        elif char in OBSOLETE:
            letters.update(OBSOLETE[char])
        else:
            raise RightsError(f"Unknown right {char!r}")
    return "".join(c for c in ALL if c in letters)


def union(*rights: str) -> str:
    """All letters of any of ``rights`` (rights from several identifiers add up)."""
    return normalise("".join(rights))


def display(rights: str) -> str:
    """Rights as GETACL/MYRIGHTS show them: canonical, plus "c"/"d" for RFC 2086 clients.

    RFC 4314 §2.1.1: "c" is shown when both "k" and "x" are held, "d" when both
    "e" and "t" are.
    """
    canonical = normalise(rights)
    extra = "".join(old for old, new in OBSOLETE.items() if all(c in canonical for c in new))
    return canonical + extra


@dataclass(frozen=True, slots=True)
class Change:
    """A SETACL rights argument: add ("+"), remove ("-") or replace ("")."""

    mode: str
    rights: str

    def apply(self, current: str) -> str:
        """The rights after this change (RFC 4314 §3.1)."""
        held = normalise(current)
        if self.mode == "+":
            return union(held, self.rights)
        if self.mode == "-":
            return "".join(c for c in held if c not in self.rights)
        return self.rights


def parse_change(text: str) -> Change:
    """Parse ``+rights``, ``-rights`` or ``rights`` (RFC 4314 §3.1 mod-rights)."""
    mode = text[:1] if text[:1] in ("+", "-") else ""
    return Change(mode, normalise(text[len(mode) :]))


@dataclass(frozen=True, slots=True)
class Identifier:
    """Who an ACL entry is for: a user name, a group name, or anyone."""

    kind: str  # USER | GROUP | ANYONE
    name: str = ""

    def render(self) -> str:
        """The identifier as it appears on the wire."""
        if self.kind == ANYONE:
            return "anyone"
        if self.kind == GROUP:
            return GROUP_PREFIX + self.name
        return self.name


def parse_identifier(text: str) -> Identifier:
    """``anyone``, ``group:<name>`` or a user name (``user@domain`` loses its domain).

    RFC 4314 §2: a leading ``-`` marks negative rights, which this server does not
    keep, so such identifiers are refused.
    """
    if not text:
        raise IdentifierError("Empty identifier")
    if text.startswith("-"):
        raise IdentifierError("Negative rights are not supported")
    if text.lower() == "anyone":
        return Identifier(ANYONE)
    if text.lower().startswith(GROUP_PREFIX):
        name = text[len(GROUP_PREFIX) :]
        if not name:
            raise IdentifierError("Missing group name")
        return Identifier(GROUP, name)
    if any(ord(c) <= 0x20 or c in "/*%" for c in text):
        raise IdentifierError("Invalid user name")
    return Identifier(USER, text.split("@", 1)[0].lower())


def read_only(rights: str) -> bool:
    """SELECT answers READ-ONLY when no right lets the user change the mailbox."""
    return not any(c in rights for c in WRITE_RIGHTS)


def right_for_flag(flag: str) -> str:
    """The right STORE/APPEND need for ``flag`` (RFC 4314 §4 STORE)."""
    if flag == "\\Seen":
        return "s"
    if flag == "\\Deleted":
        return "t"
    return "w"


def storable(flags: Iterable[str], rights: str) -> frozenset[str]:
    """The flags among ``flags`` the holder of ``rights`` may set or clear."""
    return frozenset(f for f in flags if right_for_flag(f) in rights)
