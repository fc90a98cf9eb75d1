"""The Global Address Book as a directory tree (seed-1 §12, manual L1666-1684).

Local users are listed automatically under ``OU=Users,O=VPOP3`` (the manual does
not name that branch; this is the spec's proposal) and entries added in WebMail or
Admin under ``OU=External,O=VPOP3``. The LDAP service searches this tree; a base of
``O=VPOP3`` (or blank) covers both branches. The view is rebuilt from the store on
each request: the book is small, and edits show up at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from vpop3d.store import addressbook, domains, users
from vpop3d.store.db import Database

__all__ = [
    "EXTERNAL_BRANCH",
    "ROOT",
    "USERS_BRANCH",
    "AddressBookView",
    "Entry",
    "directory_entries",
]

ROOT = "O=VPOP3"
USERS_BRANCH = "OU=Users," + ROOT
EXTERNAL_BRANCH = "OU=External," + ROOT
PERSON_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson")


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry; ``login`` is set for local users (simple bind target)."""

    dn: str
    attributes: Mapping[str, tuple[str, ...]]
    login: str | None = None


def _rdn_value(value: str) -> str:
    """RFC 4514 §2.4 escaping for the values we put in RDNs."""
    out = []
    for index, char in enumerate(value):
        if (
            char in ',+"\\<>;='
            or (index == 0 and char in " #")
            or (index == len(value) - 1 and char == " ")
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _person(
    dn: str, name: str, mails: tuple[str, ...], uid: str, login: str | None = None
) -> Entry:
    """inetOrgPerson attributes: ``person`` requires cn and sn (RFC 4519 §3.12)."""
    words = name.split()
    attributes: dict[str, tuple[str, ...]] = {
        "objectClass": PERSON_CLASSES,
        "cn": (name,),
        "displayName": (name,),
        "sn": (words[-1] if words else name,),
    }
    if len(words) > 1:
        attributes["givenName"] = (" ".join(words[:-1]),)
    if mails:
        attributes["mail"] = mails
    attributes["uid"] = (uid,)
    return Entry(dn, attributes, login)


def _container(dn: str, kind: str, value: str, object_class: str) -> Entry:
    return Entry(dn, {"objectClass": ("top", object_class), kind: (value,)})


def directory_entries(conn: Connection) -> list[Entry]:
    """The whole tree in a stable order (runs in a pool thread)."""
    local = domains.list_all(conn)
    default = domains.default(conn)
    ordered = [d.name for d in local if default is None or d.id != default.id]
    if default is not None:
        ordered.insert(0, default.name)
    entries = [
        _container(ROOT, "o", "VPOP3", "organization"),
        _container(USERS_BRANCH, "ou", "Users", "organizationalUnit"),
        _container(EXTERNAL_BRANCH, "ou", "External", "organizationalUnit"),
    ]
    for user in users.list_all(conn):
        if not user.enabled:
            continue
        mails = tuple(f"{user.name}@{domain}" for domain in ordered)
        dn = f"uid={_rdn_value(user.name)},{USERS_BRANCH}"
        entries.append(_person(dn, user.real_name or user.name, mails, user.name, user.name))
    for contact in addressbook.list_all(conn):
        uid = f"ext-{contact.id}"
        name = contact.name or contact.email
        entries.append(_person(f"uid={uid},{EXTERNAL_BRANCH}", name, (contact.email,), uid))
    return entries


class AddressBookView:
    """The read-only directory the LDAP service publishes."""

    naming_context = ROOT

    def __init__(self, database: Database) -> None:
        self._db = database

    def entries(self) -> Deferred[list[Entry]]:
        return self._db.read(directory_entries)
