"""Messages in folders: one row per (folder, UID), bodies shared through ``blobs``.

Every change bumps the folder's HIGHESTMODSEQ and stamps the changed rows with it
(RFC 7162); expunges are remembered in ``expunged`` for QRESYNC. Blob reference
counts move in the same transaction as the rows that hold them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from vpop3d.store import blobs as blob_refs
from vpop3d.store import folders
from vpop3d.store.rows import Message
from vpop3d.store.tables import SYSTEM_FLAGS, expunged, messages
from vpop3d.store.tables import folders as folder_table

SEEN = SYSTEM_FLAGS["\\Seen"]
DELETED = SYSTEM_FLAGS["\\Deleted"]


def new_uidl() -> str:
    """An opaque POP3 unique id (RFC 1939 §7: 1-70 chars 0x21-0x7E), never reused."""
    return secrets.token_hex(12)


def _row(r: Row[Any]) -> Message:
    return Message(
        id=int(r.id),
        folder_id=int(r.folder_id),
        uid=int(r.uid),
        modseq=int(r.modseq),
        flags=int(r.flags),
        keywords=tuple(r.keywords.split()) if r.keywords else (),
        internal_date=int(r.internal_date),
        size=int(r.size),
        uidl=r.uidl,
        blob_id=int(r.blob_id),
        envelope_from=r.envelope_from,
        envelope_to=tuple(r.envelope_to.split()) if r.envelope_to else (),
        summary=r.summary,
        held=bool(r.held),
    )


def insert_message(
    conn: Connection,
    folder_id: int,
    blob_id: int,
    size: int,
    *,
    internal_date: int | None = None,
    flags: int = 0,
    keywords: Iterable[str] = (),
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    summary: str | None = None,
    uidl: str | None = None,
) -> Message:
    """Add a message to a folder. The caller holds one blob reference for it."""
    uid, modseq = folders.allocate(conn, folder_id)
    keyword_text = " ".join(keywords)
    recipients = " ".join(envelope_to)
    when = int(time.time()) if internal_date is None else internal_date
    unique_id = uidl or new_uidl()
    pk = conn.execute(
        insert(messages).values(
            folder_id=folder_id,
            uid=uid,
            modseq=modseq,
            flags=flags,
            keywords=keyword_text,
            internal_date=when,
            size=size,
            uidl=unique_id,
            blob_id=blob_id,
            envelope_from=envelope_from,
            envelope_to=recipients,
            summary=summary,
            held=False,
            created_at=time.time(),
        )
    ).inserted_primary_key
    assert pk is not None
    # Built from what was inserted, not read back: one statement fewer per delivered copy.
    return Message(
        id=int(pk[0]),
        folder_id=folder_id,
        uid=uid,
        modseq=modseq,
        flags=flags,
        keywords=tuple(keyword_text.split()),
        internal_date=when,
        size=size,
        uidl=unique_id,
        blob_id=blob_id,
        envelope_from=envelope_from,
        envelope_to=tuple(recipients.split()),
        summary=summary,
        held=False,
    )


def by_id(conn: Connection, message_id: int) -> Message | None:
    r = conn.execute(select(messages).where(messages.c.id == message_id)).first()
    return _row(r) if r else None


def in_folder(conn: Connection, folder_id: int, *, include_held: bool = True) -> list[Message]:
    query = select(messages).where(messages.c.folder_id == folder_id).order_by(messages.c.uid)
    if not include_held:
        query = query.where(messages.c.held.is_(False))
    return [_row(r) for r in conn.execute(query)]


def count(conn: Connection, folder_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(messages).where(messages.c.folder_id == folder_id)
        ).scalar_one()
    )


def pop3_listing(conn: Connection, folder_id: int) -> list[tuple[int, str, int]]:
    """(id, uidl, size) of the visible (not held) messages, oldest first."""
    rows = conn.execute(
        select(messages.c.id, messages.c.uidl, messages.c.size)
        .where(messages.c.folder_id == folder_id, messages.c.held.is_(False))
        .order_by(messages.c.uid)
    )
    return [(int(r.id), r.uidl, int(r.size)) for r in rows]


def changed_since(conn: Connection, folder_id: int, modseq: int) -> list[Message]:
    rows = conn.execute(
        select(messages)
        .where(messages.c.folder_id == folder_id, messages.c.modseq > modseq)
        .order_by(messages.c.uid)
    )
    return [_row(r) for r in rows]


def set_flags(
    conn: Connection, message_ids: Sequence[int], flags: int, keywords: Iterable[str]
) -> int:
    """Replace flags on the given messages (all in one folder); return the new MODSEQ."""
    if not message_ids:
        return 0
    folder_id = conn.execute(
        select(messages.c.folder_id).where(messages.c.id == message_ids[0])
    ).scalar_one()
    modseq = folders.bump_modseq(conn, folder_id)
    conn.execute(
        update(messages)
        .where(messages.c.id.in_(list(message_ids)))
        .values(flags=flags, keywords=" ".join(keywords), modseq=modseq)
    )
    return modseq


def update_flags(conn: Connection, changes: Sequence[tuple[int, int, tuple[str, ...]]]) -> int:
    """Set per-message (id, flags, keywords) in one folder under one new MODSEQ."""
    if not changes:
        return 0
    folder_id = conn.execute(
        select(messages.c.folder_id).where(messages.c.id == changes[0][0])
    ).scalar_one()
    modseq = folders.bump_modseq(conn, folder_id)
    for message_id, flags, keywords in changes:
        conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(flags=flags, keywords=" ".join(keywords), modseq=modseq)
        )
    return modseq


def remove(conn: Connection, message_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Expunge messages; return the (folder_id, uid) pairs this call removed.

    Concurrent expunges of the same messages (two sessions, two processes) are safe: the
    folders are locked first (``bump_modseq``, always in id order, the order STORE and
    APPEND take them too), then ``DELETE ... RETURNING`` reports only the rows this
    transaction really deleted, so a message already expunged by another is neither
    recorded twice in ``expunged`` nor has its body reference dropped twice.
    """
    if not message_ids:
        return []
    ids = list(message_ids)
    folder_ids = sorted(
        int(f)
        for (f,) in conn.execute(
            select(messages.c.folder_id).where(messages.c.id.in_(ids)).distinct()
        )
    )
    modseq = {folder_id: folders.bump_modseq(conn, folder_id) for folder_id in folder_ids}
    rows = conn.execute(
        delete(messages)
        .where(messages.c.id.in_(ids))
        .returning(messages.c.folder_id, messages.c.uid, messages.c.blob_id)
    ).all()
    for r in rows:
        conn.execute(
            insert(expunged).values(folder_id=r.folder_id, uid=r.uid, modseq=modseq[r.folder_id])
        )
        blob_refs.drop_ref(conn, r.blob_id)
    return [(int(r.folder_id), int(r.uid)) for r in rows]


def hold(conn: Connection, message_ids: Sequence[int]) -> None:
    """POP3 "hold messages instead of deleting them": hide from POP3, keep the data."""
    if message_ids:
        conn.execute(update(messages).where(messages.c.id.in_(list(message_ids))).values(held=True))


def copy_to(
    conn: Connection, message_id: int, target_folder_id: int, *, keep_uidl: bool = False
) -> Message:
    """Copy a message into another folder sharing its body (single instance)."""
    source = by_id(conn, message_id)
    assert source is not None
    blob_refs.add_ref(conn, source.blob_id)
    return insert_message(
        conn,
        target_folder_id,
        source.blob_id,
        source.size,
        internal_date=source.internal_date,
        flags=source.flags,
        keywords=source.keywords,
        envelope_from=source.envelope_from,
        envelope_to=source.envelope_to,
        summary=source.summary,
        uidl=source.uidl if keep_uidl else None,
    )


def move_to(conn: Connection, message_id: int, target_folder_id: int) -> Message:
    """Move keeps the POP3 UIDL and the body; the source UID is expunged."""
    source = by_id(conn, message_id)
    assert source is not None
    # Free the unique UIDL first, then re-insert it on the copy.
    conn.execute(
        update(messages).where(messages.c.id == message_id).values(uidl="moving-" + new_uidl())
    )
    copied = copy_to(conn, message_id, target_folder_id)
    conn.execute(update(messages).where(messages.c.id == copied.id).values(uidl=source.uidl))
    remove(conn, [message_id])
    result = by_id(conn, copied.id)
    assert result is not None
    return result


def expunged_since(conn: Connection, folder_id: int, modseq: int) -> list[int]:
    rows = conn.execute(
        select(expunged.c.uid)
        .where(expunged.c.folder_id == folder_id, expunged.c.modseq > modseq)
        .order_by(expunged.c.uid)
    )
    return [int(r[0]) for r in rows]


def folder_usage(conn: Connection, user_folder_ids: Sequence[int]) -> int:
    """Total octets in the given folders (quota)."""
    if not user_folder_ids:
        return 0
    return int(
        conn.execute(
            select(func.coalesce(func.sum(messages.c.size), 0)).where(
                messages.c.folder_id.in_(list(user_folder_ids))
            )
        ).scalar_one()
    )


def user_usage(conn: Connection, user_id: int) -> int:
    """Total octets in all of a user's folders (IMAP QUOTA STORAGE usage)."""
    return int(
        conn.execute(
            select(func.coalesce(func.sum(messages.c.size), 0))
            .select_from(messages.join(folder_table, messages.c.folder_id == folder_table.c.id))
            .where(folder_table.c.user_id == user_id)
        ).scalar_one()
    )


def flag_listing(
    conn: Connection, folder_id: int, since_modseq: int | None = None
) -> list[tuple[int, int, str, int]]:
    """(uid, flags, keywords, modseq) by UID, optionally only above a MODSEQ.

    Only the columns an IMAP session keeps per message, so SELECT of a huge folder
    does not drag summaries along.
    """
    query = select(messages.c.uid, messages.c.flags, messages.c.keywords, messages.c.modseq).where(
        messages.c.folder_id == folder_id
    )
    if since_modseq is not None:
        query = query.where(messages.c.modseq > since_modseq)
    # Plain tuples straight from the cursor: both drivers return ints for these columns,
    # and skipping per-row conversion halves the cost of listing a 100,000-message folder.
    return [
        (uid, flags, keywords or "", modseq)
        for uid, flags, keywords, modseq in conn.execute(query.order_by(messages.c.uid)).all()
    ]


def by_uids(conn: Connection, folder_id: int, uids: Sequence[int]) -> list[Row[Any]]:
    """The rows (no body) of the given UIDs of a folder, by UID; absent UIDs are skipped."""
    return list(
        conn.execute(
            select(
                messages.c.id,
                messages.c.uid,
                messages.c.flags,
                messages.c.keywords,
                messages.c.internal_date,
                messages.c.size,
                messages.c.blob_id,
                messages.c.summary,
                messages.c.modseq,
            )
            .where(messages.c.folder_id == folder_id, messages.c.uid.in_(list(uids)))
            .order_by(messages.c.uid)
        )
    )


def folder_counts(conn: Connection, folder_id: int, recent_uid: int) -> tuple[int, ...]:
    """(messages, octets, unseen, recent above ``recent_uid``, deleted, deleted octets).

    One query for IMAP STATUS (RFC 3501 §6.3.10, RFC 8438 SIZE, RFC 9208 DELETED,
    DELETED-STORAGE).
    """
    deleted = messages.c.flags.op("&")(DELETED) != 0
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(messages.c.size), 0),
            func.count().filter(messages.c.flags.op("&")(SEEN) == 0),
            func.count().filter(messages.c.uid > recent_uid),
            func.count().filter(deleted),
            func.coalesce(func.sum(messages.c.size).filter(deleted), 0),
        ).where(messages.c.folder_id == folder_id)
    ).one()
    return tuple(int(value) for value in row)


def highest_modseqs(conn: Connection, folder_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(folder id, HIGHESTMODSEQ) of the given folders (cross-process change polling)."""
    if not folder_ids:
        return []
    query = select(folder_table.c.id, folder_table.c.highest_modseq).where(
        folder_table.c.id.in_(list(folder_ids))
    )
    return [(int(r[0]), int(r[1])) for r in conn.execute(query)]
