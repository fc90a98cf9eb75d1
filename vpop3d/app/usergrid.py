"""The Users grid of the web admin: server-side sort, filter and paging (seed-2 §0, §1).

Filters follow the manual's grid syntax [L2368-2376]: text columns match a
case-insensitive substring; numeric columns take ``n``, ``>n``, ``<n``, ``>=n``,
``<=n`` or ``x..y``; Mailbox Size is in bytes only [L2446]. Everything is done in
one SQL query so a page of 100,000 users costs one indexed scan, not one query per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from vpop3d.store.tables import folders, groups, messages, users

_NUMERIC = re.compile(r"\s*(?:(>=|<=|>|<)?\s*(\d+)|(\d+)\s*\.\.\s*(\d+))\s*")
SORTABLE = ("name", "group", "messages", "size", "comments", "enabled", "admin")
MAX_PAGE = 500


class FilterError(ValueError):
    """A filter the admin typed cannot be understood; ``str()`` says how to write it."""


@dataclass(frozen=True, slots=True)
class NumericFilter:
    low: int | None  # inclusive bounds; None = open
    high: int | None

    def matches(self, value: int) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def parse_numeric_filter(text: str) -> NumericFilter:
    """``"5"``, ``">5"``, ``"<=5"`` or ``"2..9"`` as inclusive bounds [L2376]."""
    found = _NUMERIC.fullmatch(text)
    if found is None:
        raise FilterError(
            f"{text.strip()!r} is not a number filter: use n, >n, <n, >=n, <=n or x..y"
        )
    op, number, low, high = found.groups()
    if low is not None:
        return NumericFilter(int(low), int(high))
    n = int(number)
    bounds = {
        None: (n, n),
        ">": (n + 1, None),
        ">=": (n, None),
        "<": (None, n - 1),
        "<=": (None, n),
    }
    return NumericFilter(*bounds[op])


@dataclass(frozen=True, slots=True)
class UserQuery:
    sort: str = "name"
    descending: bool = False
    name: str = ""
    group: str = ""  # "" = any, "-" = no group, else the group name
    messages: str = ""
    size: str = ""
    comments: str = ""
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    real_name: str
    group: str
    messages: int
    size: int
    enabled: bool
    is_admin: bool
    quota_kb: int


@dataclass(frozen=True, slots=True)
class UserPage:
    total: int  # users matching the filters
    defined: int  # all users
    rows: list[UserRow] = field(default_factory=list)


def _numeric(column: ColumnElement[Any], text: str) -> list[ColumnElement[bool]]:
    if not text.strip():
        return []
    bounds = parse_numeric_filter(text)
    clauses: list[ColumnElement[bool]] = []
    if bounds.low is not None:
        clauses.append(column >= bounds.low)
    if bounds.high is not None:
        clauses.append(column <= bounds.high)
    return clauses


def query_users(conn: Connection, q: UserQuery) -> UserPage:
    """One page of the Users grid; raises :class:`FilterError` for a bad filter."""
    inbox = (
        select(folders.c.user_id, func.count(messages.c.id).label("n"))
        .select_from(folders.join(messages, messages.c.folder_id == folders.c.id))
        .where(folders.c.name == "INBOX")
        .group_by(folders.c.user_id)
        .subquery()
    )
    sizes = (
        select(folders.c.user_id, func.sum(messages.c.size).label("bytes"))
        .select_from(folders.join(messages, messages.c.folder_id == folders.c.id))
        .group_by(folders.c.user_id)
        .subquery()
    )
    n_messages = func.coalesce(inbox.c.n, 0)
    n_bytes = func.coalesce(sizes.c.bytes, 0)
    group_name = func.coalesce(groups.c.name, "")
    columns: dict[str, ColumnElement[Any]] = {
        "name": users.c.name,
        "group": group_name,
        "messages": n_messages,
        "size": n_bytes,
        "comments": func.lower(users.c.real_name),
        "enabled": users.c.enabled,
        "admin": users.c.is_admin,
    }
    where: list[ColumnElement[bool]] = []
    if q.name.strip():
        where.append(users.c.name.contains(q.name.strip().lower(), autoescape=True))
    if q.comments.strip():
        where.append(
            func.lower(users.c.real_name).contains(q.comments.strip().lower(), autoescape=True)
        )
    if q.group == "-":
        where.append(users.c.primary_group_id.is_(None))
    elif q.group:
        where.append(groups.c.name == q.group.lower())
    where += _numeric(n_messages, q.messages)
    where += _numeric(n_bytes, q.size)
    # Aggregates over all messages are only joined when the filter or sort needs
    # them; otherwise they are computed for the rows of this page alone.
    needs_totals = q.sort in ("messages", "size") or bool(q.messages.strip() or q.size.strip())
    source = users.outerjoin(groups, groups.c.id == users.c.primary_group_id)
    if needs_totals:
        source = source.outerjoin(inbox, inbox.c.user_id == users.c.id).outerjoin(
            sizes, sizes.c.user_id == users.c.id
        )
    condition = and_(*where) if where else None
    counted = select(func.count()).select_from(source)
    if condition is not None:
        counted = counted.where(condition)
    total = int(conn.execute(counted).scalar_one())
    defined = int(conn.execute(select(func.count()).select_from(users)).scalar_one())
    key = columns.get(q.sort, users.c.name)
    order = [key.desc() if q.descending else key.asc(), users.c.name.asc()]
    page = (
        select(
            users.c.id,
            users.c.name,
            users.c.real_name,
            group_name.label("group"),
            users.c.enabled,
            users.c.is_admin,
            users.c.quota_kb,
        )
        .select_from(source)
        .order_by(*order)
        .offset(max(q.offset, 0))
        .limit(min(max(q.limit, 1), MAX_PAGE))
    )
    if condition is not None:
        page = page.where(condition)
    found = conn.execute(page).all()
    counts, volumes = _totals(conn, [int(r.id) for r in found])
    rows = [
        UserRow(
            name=r.name,
            real_name=r.real_name,
            group=r.group,
            messages=counts.get(int(r.id), 0),
            size=volumes.get(int(r.id), 0),
            enabled=bool(r.enabled),
            is_admin=bool(r.is_admin),
            quota_kb=int(r.quota_kb),
        )
        for r in found
    ]
    return UserPage(total=total, defined=defined, rows=rows)


def _totals(conn: Connection, user_ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Inbox message counts and whole-mailbox bytes for the users of one page."""
    if not user_ids:
        return {}, {}
    joined = folders.join(messages, messages.c.folder_id == folders.c.id)
    mine = folders.c.user_id.in_(user_ids)
    counts = {
        int(uid): int(n)
        for uid, n in conn.execute(
            select(folders.c.user_id, func.count(messages.c.id))
            .select_from(joined)
            .where(mine, folders.c.name == "INBOX")
            .group_by(folders.c.user_id)
        )
    }
    volumes = {
        int(uid): int(n or 0)
        for uid, n in conn.execute(
            select(folders.c.user_id, func.sum(messages.c.size))
            .select_from(joined)
            .where(mine)
            .group_by(folders.c.user_id)
        )
    }
    return counts, volumes
