"""Named leases with expiry: locks that work across processes sharing one database.

Used for POP3 maildrop locks (RFC 1939 §8: exclusive access) and for singleton
background jobs. A lease whose ``expires_at`` has passed is free; its holder renews
it while alive, so a killed process releases it by timing out.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from vpop3d.store.tables import leases as lease_table


def acquire(conn: Connection, name: str, owner: str, now: float, ttl: float) -> bool:
    """Take ``name`` for ``owner`` until ``now + ttl``; False when someone else holds it."""
    row = conn.execute(
        select(lease_table.c.owner, lease_table.c.expires_at).where(lease_table.c.name == name)
    ).first()
    if row is None:
        try:
            with conn.begin_nested():  # another process may insert the same name first
                conn.execute(
                    insert(lease_table).values(name=name, owner=owner, expires_at=now + ttl)
                )
        except IntegrityError:
            return False
        return True
    if row.owner != owner and row.expires_at > now:
        return False
    conn.execute(
        update(lease_table)
        .where(lease_table.c.name == name)
        .values(owner=owner, expires_at=now + ttl)
    )
    return True


def renew(conn: Connection, name: str, owner: str, now: float, ttl: float) -> bool:
    return (
        conn.execute(
            update(lease_table)
            .where(lease_table.c.name == name, lease_table.c.owner == owner)
            .values(expires_at=now + ttl)
        ).rowcount
        > 0
    )


def release(conn: Connection, name: str, owner: str) -> None:
    conn.execute(
        delete(lease_table).where(lease_table.c.name == name, lease_table.c.owner == owner)
    )
