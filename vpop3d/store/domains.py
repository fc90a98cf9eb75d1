"""Local domains; exactly one is the default (used for user@default addresses)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from vpop3d.store.rows import Domain
from vpop3d.store.tables import domains


def _row(r: object) -> Domain:
    return Domain(id=r.id, name=r.name, is_default=bool(r.is_default))  # type: ignore[attr-defined]  # Row


def list_all(conn: Connection) -> list[Domain]:
    return [_row(r) for r in conn.execute(select(domains).order_by(domains.c.name))]


def by_name(conn: Connection, name: str) -> Domain | None:
    r = conn.execute(select(domains).where(domains.c.name == name.lower())).first()
    return _row(r) if r else None


def default(conn: Connection) -> Domain | None:
    r = conn.execute(select(domains).where(domains.c.is_default.is_(True))).first()
    if r is None:
        r = conn.execute(select(domains).order_by(domains.c.id)).first()
    return _row(r) if r else None


def add(conn: Connection, name: str, *, make_default: bool = False) -> Domain:
    if make_default or default(conn) is None:
        conn.execute(update(domains).values(is_default=False))
        make_default = True
    pk = conn.execute(
        insert(domains).values(name=name.lower(), is_default=make_default)
    ).inserted_primary_key
    assert pk is not None
    return Domain(id=int(pk[0]), name=name.lower(), is_default=make_default)


def set_default(conn: Connection, name: str) -> None:
    conn.execute(update(domains).values(is_default=domains.c.name == name.lower()))


def remove(conn: Connection, name: str) -> bool:
    return conn.execute(delete(domains).where(domains.c.name == name.lower())).rowcount > 0
