"""Local users (accounts); names are stored lower case."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from vpop3d.store.rows import User
from vpop3d.store.tables import folder_acl, user_groups, users


def _row(r: Row[Any]) -> User:
    return User(
        id=r.id,
        name=r.name,
        real_name=r.real_name,
        enabled=bool(r.enabled),
        is_admin=bool(r.is_admin),
        password_hash=r.password_hash,
        scram_sha256=r.scram_sha256,
        plain_secret=r.plain_secret,
        webmail_password_hash=r.webmail_password_hash,
        must_change_password=bool(r.must_change_password),
        quota_kb=int(r.quota_kb),
        allow_send_internet=bool(r.allow_send_internet),
        allow_receive_internet=bool(r.allow_receive_internet),
        primary_group_id=r.primary_group_id,
        created_at=float(r.created_at),
    )


def list_all(conn: Connection) -> list[User]:
    return [_row(r) for r in conn.execute(select(users).order_by(users.c.name))]


def names(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(select(users.c.name))}


def by_name(conn: Connection, name: str) -> User | None:
    r = conn.execute(select(users).where(users.c.name == name.lower())).first()
    return _row(r) if r else None


def by_id(conn: Connection, user_id: int) -> User | None:
    r = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _row(r) if r else None


def add(conn: Connection, name: str, password_hash: str, **fields: Any) -> User:
    values: dict[str, Any] = {
        "name": name.lower(),
        "password_hash": password_hash,
        "created_at": time.time(),
    }
    values.update(fields)
    pk = conn.execute(insert(users).values(values)).inserted_primary_key
    assert pk is not None
    user = by_id(conn, int(pk[0]))
    assert user is not None
    return user


def update_fields(conn: Connection, user_id: int, **fields: Any) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**fields))


def remove(conn: Connection, user_id: int) -> bool:
    # Folder shares granted to this user go with it (RFC 4314 rows naming nobody).
    conn.execute(
        delete(folder_acl).where(
            folder_acl.c.grantee_kind == "user", folder_acl.c.grantee_id == user_id
        )
    )
    return conn.execute(delete(users).where(users.c.id == user_id)).rowcount > 0


def count_admins(conn: Connection) -> int:
    """Enabled administrators: a disabled one cannot administer anything."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(users)
            .where(users.c.is_admin.is_(True), users.c.enabled.is_(True))
        ).scalar_one()
    )


def secondary_groups(conn: Connection, user_id: int) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            select(user_groups.c.group_id).where(user_groups.c.user_id == user_id)
        )
    ]


def set_secondary_groups(conn: Connection, user_id: int, group_ids: list[int]) -> None:
    conn.execute(delete(user_groups).where(user_groups.c.user_id == user_id))
    for gid in group_ids:
        conn.execute(insert(user_groups).values(user_id=user_id, group_id=gid))


def all_secondary_groups(conn: Connection) -> list[tuple[int, int]]:
    """Every (user_id, group_id) secondary membership, in one query."""
    rows = conn.execute(select(user_groups.c.user_id, user_groups.c.group_id))
    return [(int(r.user_id), int(r.group_id)) for r in rows]
