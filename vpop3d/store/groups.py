"""Groups (seed-1 §13): permissions with tri-state overrides, primary and secondary."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from vpop3d.store.rows import Group
from vpop3d.store.tables import folder_acl, groups, users


def _row(r: Row[Any]) -> Group:
    return Group(
        id=r.id,
        name=r.name,
        enabled=bool(r.enabled),
        force=bool(r.force),
        in_everyone=r.in_everyone,
        allow_send_internet=r.allow_send_internet,
        allow_receive_internet=r.allow_receive_internet,
        monitor=r.monitor,
        admin=r.admin,
        max_outgoing_kb=int(r.max_outgoing_kb),
        reply_address=r.reply_address,
    )


def list_all(conn: Connection) -> list[Group]:
    return [_row(r) for r in conn.execute(select(groups).order_by(groups.c.name))]


def by_name(conn: Connection, name: str) -> Group | None:
    r = conn.execute(select(groups).where(groups.c.name == name.lower())).first()
    return _row(r) if r else None


def by_id(conn: Connection, group_id: int) -> Group | None:
    r = conn.execute(select(groups).where(groups.c.id == group_id)).first()
    return _row(r) if r else None


def add(conn: Connection, name: str, **fields: Any) -> Group:
    pk = conn.execute(insert(groups).values(name=name.lower(), **fields)).inserted_primary_key
    assert pk is not None
    group = by_id(conn, int(pk[0]))
    assert group is not None
    return group


def update_fields(conn: Connection, group_id: int, **fields: Any) -> None:
    conn.execute(update(groups).where(groups.c.id == group_id).values(**fields))


def remove(conn: Connection, group_id: int) -> bool:
    # Folder shares granted to this group go with it (RFC 4314 rows naming nobody).
    conn.execute(
        delete(folder_acl).where(
            folder_acl.c.grantee_kind == "group", folder_acl.c.grantee_id == group_id
        )
    )
    return conn.execute(delete(groups).where(groups.c.id == group_id)).rowcount > 0


def members(conn: Connection, group_id: int) -> list[str]:
    """Names of users whose primary group this is."""
    return [
        r[0] for r in conn.execute(select(users.c.name).where(users.c.primary_group_id == group_id))
    ]
