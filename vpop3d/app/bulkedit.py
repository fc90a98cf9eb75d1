"""Bulk edit users (seed-2 §12): select users by wildcard and group, then set the
ticked settings on all of them in one transaction (all or nothing)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from vpop3d.app import accounts
from vpop3d.store import groups, users

SETTABLE = (
    "real_name",
    "enabled",
    "quota_kb",
    "allow_send_internet",
    "allow_receive_internet",
    "group",
)
_ACCOUNT_FIELDS = ("real_name", "enabled", "quota_kb")


def match_users(conn: Connection, pattern: str, group: str) -> list[str]:
    """Names matching a ``*``/``?`` wildcard (case-insensitive) in a group ('' = any,
    '-' = none)."""
    wanted = pattern.strip().lower() or "*"
    group_id: int | None = None
    if group not in ("", "-"):
        found = groups.by_name(conn, group)
        if found is None:
            return []
        group_id = found.id
    result = []
    for user in users.list_all(conn):
        if not fnmatch.fnmatchcase(user.name, wanted):
            continue
        if group == "-" and user.primary_group_id is not None:
            continue
        if group_id is not None and user.primary_group_id != group_id:
            continue
        result.append(user.name)
    return result


def _check(changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if key not in SETTABLE:
            raise accounts.AdminError(f"{key!r} cannot be bulk edited")
        if key == "real_name" and (not isinstance(value, str) or len(value) > 80):
            raise accounts.AdminError("Comments can be at most 80 characters")
        if key == "quota_kb" and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise accounts.AdminError("the quota must be 0 (no limit) or more kB")
        if key in ("enabled", "allow_send_internet", "allow_receive_internet") and not (
            isinstance(value, bool)
        ):
            raise accounts.AdminError(f"{key} must be on or off")


def apply(conn: Connection, names: Sequence[str], changes: dict[str, Any]) -> int:
    """Set ``changes`` on every user in ``names``; return how many were changed."""
    if not names:
        raise accounts.AdminError("select at least one user")
    if not changes:
        raise accounts.AdminError("tick Set for at least one change")
    _check(changes)
    group_id: int | None = None
    if changes.get("group"):
        found = groups.by_name(conn, str(changes["group"]))
        if found is None:
            raise accounts.AdminError(f"no such group {changes['group']!r}")
        group_id = found.id
    core = {k: v for k, v in changes.items() if k in _ACCOUNT_FIELDS}
    direct = {
        k: v for k, v in changes.items() if k in ("allow_send_internet", "allow_receive_internet")
    }
    if "group" in changes:
        direct["primary_group_id"] = group_id
    for name in names:
        user = accounts.update_user(conn, name, **core)  # keeps the last-admin rule
        if direct:
            users.update_fields(conn, user.id, **direct)
    accounts.require_enabled_admin(conn)
    return len(names)
