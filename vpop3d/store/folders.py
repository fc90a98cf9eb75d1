"""Folders (IMAP mailboxes) per user, with UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ.

UID and MODSEQ allocation happens here, inside the caller's write transaction: the
``UPDATE folders`` row lock (PostgreSQL) or ``BEGIN IMMEDIATE`` (SQLite) serialises
concurrent deliveries, so UIDs are strictly ascending and never reused (RFC 3501 §2.3.1.1).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from vpop3d.store import settings
from vpop3d.store.rows import Folder
from vpop3d.store.tables import folders, subscriptions

INBOX = "INBOX"


def _row(r: Row[Any]) -> Folder:
    return Folder(
        id=r.id,
        user_id=r.user_id,
        name=r.name,
        uidvalidity=int(r.uidvalidity),
        uidnext=int(r.uidnext),
        highest_modseq=int(r.highest_modseq),
        recent_uid=int(r.recent_uid),
        special_use=r.special_use,
    )


def normalise(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 §5.1); other names are kept as given."""
    head, sep, rest = name.partition("/")
    return INBOX + sep + rest if head.upper() == INBOX else name


def list_for_user(conn: Connection, user_id: int) -> list[Folder]:
    return [
        _row(r)
        for r in conn.execute(
            select(folders).where(folders.c.user_id == user_id).order_by(folders.c.name)
        )
    ]


def by_name(conn: Connection, user_id: int, name: str) -> Folder | None:
    r = conn.execute(
        select(folders).where(folders.c.user_id == user_id, folders.c.name == normalise(name))
    ).first()
    return _row(r) if r else None


def by_id(conn: Connection, folder_id: int) -> Folder | None:
    r = conn.execute(select(folders).where(folders.c.id == folder_id)).first()
    return _row(r) if r else None


def create(conn: Connection, user_id: int, name: str, special_use: str | None = None) -> Folder:
    uidvalidity = settings.next_counter(conn, "store.uidvalidity", int(time.time()))
    pk = conn.execute(
        insert(folders).values(
            user_id=user_id,
            name=normalise(name),
            uidvalidity=uidvalidity,
            uidnext=1,
            highest_modseq=1,
            recent_uid=0,
            special_use=special_use,
            created_at=time.time(),
        )
    ).inserted_primary_key
    assert pk is not None
    folder = by_id(conn, int(pk[0]))
    assert folder is not None
    return folder


def ensure(conn: Connection, user_id: int, name: str, special_use: str | None = None) -> Folder:
    """The folder, created if missing; safe when two sessions create it at once.

    The insert runs in a SAVEPOINT: if a concurrent transaction committed the same name
    first (the unique constraint fires), its folder is read back instead.
    """
    found = by_name(conn, user_id, name)
    if found is not None:
        return found
    try:
        with conn.begin_nested():
            return create(conn, user_id, name, special_use)
    except IntegrityError:
        raced = by_name(conn, user_id, name)
        if raced is None:
            raise
        return raced


def inbox(conn: Connection, user_id: int) -> Folder:
    return ensure(conn, user_id, INBOX)


def allocate(conn: Connection, folder_id: int, count: int = 1) -> tuple[int, int]:
    """Reserve ``count`` UIDs and one new MODSEQ; return (first uid, modseq)."""
    conn.execute(
        update(folders)
        .where(folders.c.id == folder_id)
        .values(
            uidnext=folders.c.uidnext + count,
            highest_modseq=folders.c.highest_modseq + 1,
        )
    )
    r = conn.execute(
        select(folders.c.uidnext, folders.c.highest_modseq).where(folders.c.id == folder_id)
    ).one()
    return int(r.uidnext) - count, int(r.highest_modseq)


def bump_modseq(conn: Connection, folder_id: int) -> int:
    """A new MODSEQ for a flag change or expunge in this folder."""
    conn.execute(
        update(folders)
        .where(folders.c.id == folder_id)
        .values(highest_modseq=folders.c.highest_modseq + 1)
    )
    return int(
        conn.execute(select(folders.c.highest_modseq).where(folders.c.id == folder_id)).scalar_one()
    )


def claim_recent(conn: Connection, folder_id: int) -> tuple[int, int]:
    """Give this session \\Recent for UIDs above the watermark; return (old, new) marks."""
    r = conn.execute(
        select(folders.c.recent_uid, folders.c.uidnext).where(folders.c.id == folder_id)
    ).one()
    old, new = int(r.recent_uid), int(r.uidnext) - 1
    if new > old:
        conn.execute(update(folders).where(folders.c.id == folder_id).values(recent_uid=new))
    return old, new


def rename(conn: Connection, folder_id: int, new_name: str) -> None:
    conn.execute(update(folders).where(folders.c.id == folder_id).values(name=normalise(new_name)))


def remove(conn: Connection, folder_id: int) -> None:
    """Delete the folder row; the caller first removed its messages (blob refs)."""
    conn.execute(delete(folders).where(folders.c.id == folder_id))


def subscribed(conn: Connection, user_id: int) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            select(subscriptions.c.name).where(subscriptions.c.user_id == user_id)
        )
    ]


def subscribe(conn: Connection, user_id: int, name: str) -> None:
    name = normalise(name)
    if name not in subscribed(conn, user_id):
        conn.execute(insert(subscriptions).values(user_id=user_id, name=name))


def unsubscribe(conn: Connection, user_id: int, name: str) -> bool:
    return (
        conn.execute(
            delete(subscriptions).where(
                subscriptions.c.user_id == user_id,
                subscriptions.c.name == normalise(name),
            )
        ).rowcount
        > 0
    )
