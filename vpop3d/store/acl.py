"""Folder access control lists (RFC 4314): who besides the owner may use a folder.

One row per (folder, grantee); a grantee is a user, a group or ``anyone``. Rights are
RFC 4314 letters, kept as given by :mod:`vpop3d.core.imaprights` (canonical order).
Group membership for sharing counts both the secondary groups (``user_groups``, seed-1
§13 "used for IMAP4 folder-sharing permissions") and the user's primary group.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, or_, select, update

from vpop3d.store.tables import folder_acl, folders, groups, user_groups, users

USER = "user"
GROUP = "group"
ANYONE = "anyone"


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One ACL row with the grantee's current name (empty for ``anyone``)."""

    folder_id: int
    kind: str  # USER | GROUP | ANYONE
    grantee_id: int | None
    name: str
    rights: str


@dataclass(frozen=True, slots=True)
class Grant:
    """A folder some user may reach through an ACL, with the rights that apply."""

    folder_id: int
    owner_id: int
    owner_name: str
    folder_name: str
    rights: str  # the union over every matching entry


def _match(kind: str, grantee_id: int | None) -> ColumnElement[bool]:
    if grantee_id is None:
        return and_(folder_acl.c.grantee_kind == kind, folder_acl.c.grantee_id.is_(None))
    return and_(folder_acl.c.grantee_kind == kind, folder_acl.c.grantee_id == grantee_id)


def entries(conn: Connection, folder_id: int) -> list[AclEntry]:
    """The folder's ACL, users first, then groups, then anyone; names resolved."""
    rows = conn.execute(
        select(
            folder_acl.c.grantee_kind,
            folder_acl.c.grantee_id,
            folder_acl.c.rights,
            users.c.name.label("user_name"),
            groups.c.name.label("group_name"),
        )
        .select_from(
            folder_acl.outerjoin(
                users,
                and_(folder_acl.c.grantee_kind == USER, users.c.id == folder_acl.c.grantee_id),
            ).outerjoin(
                groups,
                and_(folder_acl.c.grantee_kind == GROUP, groups.c.id == folder_acl.c.grantee_id),
            )
        )
        .where(folder_acl.c.folder_id == folder_id)
    )
    out: list[AclEntry] = []
    for r in rows:
        kind = str(r.grantee_kind)
        name = r.user_name if kind == USER else r.group_name if kind == GROUP else ""
        if kind != ANYONE and name is None:
            continue  # the user or group was deleted; the row is inert
        gid = None if r.grantee_id is None else int(r.grantee_id)
        out.append(AclEntry(folder_id, kind, gid, str(name or ""), str(r.rights)))
    order = {USER: 0, GROUP: 1, ANYONE: 2}
    return sorted(out, key=lambda e: (order.get(e.kind, 3), e.name))


def rights_of(conn: Connection, folder_id: int, kind: str, grantee_id: int | None) -> str | None:
    """The rights stored for one grantee, or None when it has no entry."""
    value = conn.execute(
        select(folder_acl.c.rights).where(
            folder_acl.c.folder_id == folder_id, _match(kind, grantee_id)
        )
    ).scalar()
    return None if value is None else str(value)


def put(conn: Connection, folder_id: int, kind: str, grantee_id: int | None, rights: str) -> None:
    """Set one grantee's rights; empty rights remove the entry (RFC 4314 §3.1)."""
    if not rights:
        remove(conn, folder_id, kind, grantee_id)
        return
    done = conn.execute(
        update(folder_acl)
        .where(folder_acl.c.folder_id == folder_id, _match(kind, grantee_id))
        .values(rights=rights)
    ).rowcount
    if not done:
        conn.execute(
            insert(folder_acl).values(
                folder_id=folder_id, grantee_kind=kind, grantee_id=grantee_id, rights=rights
            )
        )


def remove(conn: Connection, folder_id: int, kind: str, grantee_id: int | None) -> bool:
    """Drop one grantee's entry; False when there was none."""
    result = conn.execute(
        delete(folder_acl).where(folder_acl.c.folder_id == folder_id, _match(kind, grantee_id))
    )
    return bool(result.rowcount)


def copy_entries(conn: Connection, source_id: int, target_id: int) -> None:
    """Give ``target_id`` the ACL of ``source_id`` (a new child inherits its parent's)."""
    for e in conn.execute(select(folder_acl).where(folder_acl.c.folder_id == source_id)):
        put(conn, target_id, str(e.grantee_kind), e.grantee_id, str(e.rights))


def group_ids_of(conn: Connection, user_id: int) -> list[int]:
    """Groups whose shares reach ``user_id``: secondary groups plus the primary group."""
    ids = {
        int(r[0])
        for r in conn.execute(
            select(user_groups.c.group_id).where(user_groups.c.user_id == user_id)
        )
    }
    primary = conn.execute(select(users.c.primary_group_id).where(users.c.id == user_id)).scalar()
    if primary is not None:
        ids.add(int(primary))
    return sorted(ids)


def _for_principal(user_id: int, group_ids: list[int]) -> ColumnElement[bool]:
    clauses = [
        and_(folder_acl.c.grantee_kind == USER, folder_acl.c.grantee_id == user_id),
        folder_acl.c.grantee_kind == ANYONE,
    ]
    if group_ids:
        clauses.append(
            and_(folder_acl.c.grantee_kind == GROUP, folder_acl.c.grantee_id.in_(group_ids))
        )
    return or_(*clauses)


def grants_for(conn: Connection, user_id: int, owner_id: int | None = None) -> list[Grant]:
    """Other users' folders reaching ``user_id`` (optionally of one owner), rights merged.

    Rights from the user's own entry, the groups' entries and ``anyone`` add up
    (RFC 4314 §2: the union of the matching identifiers' rights).
    """
    query = (
        select(
            folders.c.id,
            folders.c.user_id,
            folders.c.name,
            users.c.name.label("owner_name"),
            folder_acl.c.rights,
        )
        .select_from(
            folder_acl.join(folders, folders.c.id == folder_acl.c.folder_id).join(
                users, users.c.id == folders.c.user_id
            )
        )
        .where(_for_principal(user_id, group_ids_of(conn, user_id)), folders.c.user_id != user_id)
    )
    if owner_id is not None:
        query = query.where(folders.c.user_id == owner_id)
    merged: dict[int, Grant] = {}
    for r in conn.execute(query):
        fid = int(r.id)
        prior = merged.get(fid)
        rights = str(r.rights) + (prior.rights if prior else "")
        merged[fid] = Grant(fid, int(r.user_id), str(r.owner_name), str(r.name), rights)
    return sorted(merged.values(), key=lambda g: (g.owner_name, g.folder_name))


def rights_for(conn: Connection, folder_id: int, user_id: int) -> str:
    """Every right ``user_id`` gets on ``folder_id`` through the ACL (letters may repeat)."""
    rows = conn.execute(
        select(folder_acl.c.rights).where(
            folder_acl.c.folder_id == folder_id,
            _for_principal(user_id, group_ids_of(conn, user_id)),
        )
    )
    return "".join(str(r[0]) for r in rows)
