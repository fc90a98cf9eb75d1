"""Administration of groups (seed-1 §13, seed-2 §23): the Settings -> Groups grid.

The grid is edited in place, one cell at a time [L1702]; each call here changes one
group in one transaction. Tri-state columns take True, False or None ("do not
override", the greyed checkbox [L1706]).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from vpop3d.app.accounts import AdminError
from vpop3d.store import groups, users
from vpop3d.store.rows import Group
from vpop3d.store.tables import users as users_table

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
TRISTATE = ("in_everyone", "allow_send_internet", "allow_receive_internet", "monitor", "admin")
FLAGS = ("enabled", "force")
BUILT_IN = ("everyone", "admins", "no-one")


@dataclass(frozen=True, slots=True)
class GroupRow:
    group: Group
    user_count: int


def list_groups(conn: Connection) -> list[GroupRow]:
    counts: dict[int, int] = {
        int(group_id): int(n)
        for group_id, n in conn.execute(
            select(users_table.c.primary_group_id, func.count())
            .where(users_table.c.primary_group_id.is_not(None))
            .group_by(users_table.c.primary_group_id)
        ).all()
    }
    return [GroupRow(g, int(counts.get(g.id, 0))) for g in groups.list_all(conn)]


def add_group(conn: Connection, name: str) -> Group:
    """A new group; its name shares one namespace with users and lists [L1708]."""
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise AdminError(
            f"invalid group name {name!r}: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name in BUILT_IN:
        raise AdminError(f"{name!r} is a built-in group")
    if users.by_name(conn, name) is not None:
        raise AdminError(f"{name!r} is already the name of a user")
    if groups.by_name(conn, name) is not None:
        raise AdminError(f"group {name!r} already exists")
    return groups.add(conn, name)


MAX_KB = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL


def _require(conn: Connection, group_id: int) -> Group:
    group = groups.by_id(conn, group_id)
    if group is None:
        raise AdminError(f"no such group (id {group_id})")
    return group


def update_group(conn: Connection, group_id: int, **changes: Any) -> Group:
    """Change cells of one group; values are checked before anything is written."""
    _require(conn, group_id)
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key in FLAGS:
            if not isinstance(value, bool):
                raise AdminError(f"{key} must be true or false")
        elif key in TRISTATE:
            if value is not None and not isinstance(value, bool):
                raise AdminError(f"{key} must be true, false or null (do not override)")
        elif key == "max_outgoing_kb":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AdminError("Max Outgoing Size must be 0 (no limit) or more kB")
            if value > MAX_KB:
                raise AdminError(f"Max Outgoing Size can be at most {MAX_KB} kB (about 2 TB)")
        elif key == "reply_address":
            value = str(value).strip()
            if value and ("@" not in value or any(c.isspace() for c in value)):
                raise AdminError(
                    "the reply address must be an address like info@example.com or *@example.com"
                )
        else:
            raise AdminError(f"unknown group setting {key!r}")
        values[key] = value
    if values:
        groups.update_fields(conn, group_id, **values)
    return _require(conn, group_id)


def delete_group(conn: Connection, group_id: int) -> None:
    _require(conn, group_id)
    groups.remove(conn, group_id)
