"""Externally added Global Address Book entries (seed-1 §12, manual L1668-1684).

Local users are not stored here: the directory view lists them from ``users``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from vpop3d.store.tables import address_book

__all__ = ["AddressBookEntry", "add", "by_id", "list_all", "remove"]


@dataclass(frozen=True, slots=True)
class AddressBookEntry:
    id: int
    name: str
    email: str
    created_at: float


def _row(r: Row[Any]) -> AddressBookEntry:
    return AddressBookEntry(
        id=int(r.id), name=r.name, email=r.email, created_at=float(r.created_at)
    )


def add(conn: Connection, name: str, email: str) -> AddressBookEntry:
    """Store one contact; ``email`` is kept as given (display case preserved)."""
    now = time.time()
    pk = conn.execute(
        insert(address_book).values(name=name.strip(), email=email.strip(), created_at=now)
    ).inserted_primary_key
    assert pk is not None
    return AddressBookEntry(id=int(pk[0]), name=name.strip(), email=email.strip(), created_at=now)


def by_id(conn: Connection, entry_id: int) -> AddressBookEntry | None:
    r = conn.execute(select(address_book).where(address_book.c.id == entry_id)).first()
    return _row(r) if r else None


def list_all(conn: Connection) -> list[AddressBookEntry]:
    """Every entry, by name then id (a stable order for paged LDAP results)."""
    query = select(address_book).order_by(address_book.c.name, address_book.c.id)
    return [_row(r) for r in conn.execute(query)]


def remove(conn: Connection, entry_id: int) -> bool:
    return conn.execute(delete(address_book).where(address_book.c.id == entry_id)).rowcount > 0
