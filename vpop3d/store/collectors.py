"""Mail Collectors, their UIDL inventory (the Messages tab) and the Download Rules.

Rows come back as plain dicts of column values; the app layer turns them into
typed configuration. ``mark_stored`` is meant to run inside the same transaction
that stores the downloaded message, so a crash can neither lose nor duplicate it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from vpop3d.store.tables import collector_uidls, collectors, download_rules

Row = dict[str, Any]

__all__ = [
    "add",
    "add_rule",
    "by_id",
    "by_name",
    "forget_uidl",
    "list_all",
    "list_rules",
    "mark_deleted",
    "mark_stored",
    "record_result",
    "remove",
    "remove_rule",
    "reset_uidls",
    "rule_by_id",
    "see",
    "set_flags",
    "set_flags_all",
    "uidls",
    "update_fields",
    "update_rule",
]


def list_all(conn: Connection) -> list[Row]:
    query = select(collectors).order_by(collectors.c.priority, collectors.c.id)
    return [dict(row) for row in conn.execute(query).mappings().all()]


def by_id(conn: Connection, collector_id: int) -> Row | None:
    row = conn.execute(select(collectors).where(collectors.c.id == collector_id)).mappings().first()
    return dict(row) if row is not None else None


def by_name(conn: Connection, name: str) -> Row | None:
    row = conn.execute(select(collectors).where(collectors.c.name == name)).mappings().first()
    return dict(row) if row is not None else None


def add(conn: Connection, name: str, **fields: Any) -> int:
    pk = conn.execute(insert(collectors).values(name=name, **fields)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def update_fields(conn: Connection, collector_id: int, **fields: Any) -> None:
    conn.execute(update(collectors).where(collectors.c.id == collector_id).values(**fields))


def remove(conn: Connection, collector_id: int) -> None:
    conn.execute(delete(collector_uidls).where(collector_uidls.c.collector_id == collector_id))
    conn.execute(delete(collectors).where(collectors.c.id == collector_id))


def record_result(conn: Connection, collector_id: int, text: str, now: float) -> None:
    """The "Last connection result" string (seed-3 §2.4)."""
    update_fields(conn, collector_id, last_result=text[:1000], last_run_at=now)


def uidls(conn: Connection, collector_id: int) -> dict[str, Row]:
    """The Messages tab rows of one collector, by UIDL."""
    query = select(collector_uidls).where(collector_uidls.c.collector_id == collector_id)
    return {row["uidl"]: dict(row) for row in conn.execute(query).mappings().all()}


def see(conn: Connection, collector_id: int, keys: Iterable[str], now: float) -> None:
    """Set last-seen for listed UIDLs, adding rows for new ones (seed-3 §3.6 step 5)."""
    wanted = list(dict.fromkeys(keys))
    known = set(
        conn.execute(
            select(collector_uidls.c.uidl).where(collector_uidls.c.collector_id == collector_id)
        ).scalars()
    )
    fresh = [key for key in wanted if key not in known]
    if fresh:
        conn.execute(
            insert(collector_uidls),
            [
                {"collector_id": collector_id, "uidl": key, "first_seen": now, "last_seen": now}
                for key in fresh
            ],
        )
    old = [key for key in wanted if key in known]
    for start in range(0, len(old), 500):
        conn.execute(
            update(collector_uidls)
            .where(
                collector_uidls.c.collector_id == collector_id,
                collector_uidls.c.uidl.in_(old[start : start + 500]),
            )
            .values(last_seen=now)
        )


def mark_stored(conn: Connection, collector_id: int, key: str, now: float, **info: Any) -> None:
    """The message under ``key`` is safely stored here (call in the storing transaction)."""
    values = {"stored": True, "retrieved_at": now, "get_flag": False, "last_seen": now, **info}
    done = conn.execute(
        update(collector_uidls)
        .where(collector_uidls.c.collector_id == collector_id, collector_uidls.c.uidl == key)
        .values(**values)
    )
    if done.rowcount == 0:
        conn.execute(
            insert(collector_uidls).values(
                collector_id=collector_id, uidl=key, first_seen=now, **values
            )
        )


def set_disposition(conn: Connection, collector_id: int, key: str, disposition: str) -> None:
    conn.execute(
        update(collector_uidls)
        .where(collector_uidls.c.collector_id == collector_id, collector_uidls.c.uidl == key)
        .values(disposition=disposition)
    )


def mark_deleted(conn: Connection, collector_id: int, keys: Iterable[str]) -> None:
    """The server committed the DELEs of ``keys`` (after a successful QUIT)."""
    wanted = list(keys)
    for start in range(0, len(wanted), 500):
        conn.execute(
            update(collector_uidls)
            .where(
                collector_uidls.c.collector_id == collector_id,
                collector_uidls.c.uidl.in_(wanted[start : start + 500]),
            )
            .values(deleted=True, del_flag=False)
        )


def forget_missing(conn: Connection, collector_id: int, before: float) -> int:
    """Drop rows not seen at the server since ``before`` ("Hold Obsolete UIDLs")."""
    result = conn.execute(
        delete(collector_uidls).where(
            collector_uidls.c.collector_id == collector_id, collector_uidls.c.last_seen < before
        )
    )
    return int(result.rowcount or 0)


def set_flags(
    conn: Connection, collector_id: int, key: str, *, get: bool | None = None, dele: bool | None
) -> None:
    """The Get/Del checkboxes of the Messages tab (seed-3 §7)."""
    values: dict[str, bool] = {}
    if get is not None:
        values["get_flag"] = get
    if dele is not None:
        values["del_flag"] = dele
    if values:
        conn.execute(
            update(collector_uidls)
            .where(collector_uidls.c.collector_id == collector_id, collector_uidls.c.uidl == key)
            .values(**values)
        )


def reset_uidls(conn: Connection, collector_id: int) -> int:
    """Forget the inventory: the next run treats every message at the server as new."""
    result = conn.execute(
        delete(collector_uidls).where(collector_uidls.c.collector_id == collector_id)
    )
    return int(result.rowcount or 0)


def list_rules(conn: Connection) -> list[Row]:
    query = select(download_rules).order_by(download_rules.c.position, download_rules.c.id)
    return [dict(row) for row in conn.execute(query).mappings().all()]


def add_rule(conn: Connection, **fields: Any) -> int:
    pk = conn.execute(insert(download_rules).values(**fields)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def existing_messages(conn: Connection, ids: Iterable[int]) -> set[int]:
    """Which of these local message ids still exist ("delete when deleted locally")."""
    from vpop3d.store.tables import messages

    wanted = list(ids)
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        query = select(messages.c.id).where(messages.c.id.in_(wanted[start : start + 500]))
        found.update(int(i) for i in conn.execute(query).scalars())
    return found


def forget_uidl(conn: Connection, collector_id: int, key: str) -> int:
    """Forget one Messages tab row: the next run treats that message as new."""
    result = conn.execute(
        delete(collector_uidls).where(
            collector_uidls.c.collector_id == collector_id, collector_uidls.c.uidl == key
        )
    )
    return int(result.rowcount or 0)


def rule_by_id(conn: Connection, rule_id: int) -> Row | None:
    query = select(download_rules).where(download_rules.c.id == rule_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def update_rule(conn: Connection, rule_id: int, **fields: Any) -> None:
    conn.execute(update(download_rules).where(download_rules.c.id == rule_id).values(**fields))


def remove_rule(conn: Connection, rule_id: int) -> None:
    conn.execute(delete(download_rules).where(download_rules.c.id == rule_id))


def set_flags_all(conn: Connection, collector_id: int, *, get: bool, dele: bool) -> int:
    """The Get/Del column headers: set both flags on every row still at the server."""
    result = conn.execute(
        update(collector_uidls)
        .where(collector_uidls.c.collector_id == collector_id, collector_uidls.c.deleted.is_(False))
        .values(get_flag=get, del_flag=dele)
    )
    return int(result.rowcount or 0)
