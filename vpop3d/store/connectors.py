"""Connections, their Mail Senders and the Connector Schedule items (seed-3 §0, §21).

Rows come back as plain dicts of column values (the app layer turns them into typed
configuration); writes take keyword arguments named after the columns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from vpop3d.store.tables import connections, mail_senders, schedule_items

Row = dict[str, Any]


def list_connections(conn: Connection) -> list[Row]:
    rows = conn.execute(select(connections).order_by(connections.c.id)).mappings().all()
    return [dict(row) for row in rows]


def list_senders(conn: Connection) -> list[Row]:
    rows = conn.execute(select(mail_senders).order_by(mail_senders.c.id)).mappings().all()
    return [dict(row) for row in rows]


def list_schedule(conn: Connection) -> list[Row]:
    query = select(schedule_items).order_by(schedule_items.c.position, schedule_items.c.id)
    return [dict(row) for row in conn.execute(query).mappings().all()]


def add_connection(conn: Connection, name: str, **fields: Any) -> int:
    """A Connection plus its Mail Sender (the wizard always makes both, seed-3 §0)."""
    sender_fields = {k[len("sender_") :]: v for k, v in fields.items() if k.startswith("sender_")}
    own = {k: v for k, v in fields.items() if not k.startswith("sender_")}
    pk = conn.execute(insert(connections).values(name=name, **own)).inserted_primary_key
    assert pk is not None
    connection_id = int(pk[0])
    conn.execute(insert(mail_senders).values(connection_id=connection_id, **sender_fields))
    return connection_id


def update_connection(conn: Connection, connection_id: int, **fields: Any) -> None:
    conn.execute(update(connections).where(connections.c.id == connection_id).values(**fields))


def update_sender(conn: Connection, connection_id: int, **fields: Any) -> None:
    conn.execute(
        update(mail_senders).where(mail_senders.c.connection_id == connection_id).values(**fields)
    )


def remove_connection(conn: Connection, connection_id: int) -> None:
    conn.execute(delete(mail_senders).where(mail_senders.c.connection_id == connection_id))
    conn.execute(delete(connections).where(connections.c.id == connection_id))


def ensure_default(conn: Connection) -> int:
    """The first Connection, made on first use: LAN, default, sending direct to MX."""
    existing = conn.execute(select(connections.c.id).order_by(connections.c.id)).first()
    if existing is not None:
        return int(existing.id)
    return add_connection(conn, "Internet", kind="lan", is_default=True)


def record_result(conn: Connection, connection_id: int, text: str, now: float) -> None:
    """The "Last connection result" strings of the Connection and its Sender."""
    conn.execute(
        update(connections)
        .where(connections.c.id == connection_id)
        .values(last_result=text[:1000], last_run_at=now)
    )
    update_sender(conn, connection_id, last_result=text[:1000])


def add_schedule_item(conn: Connection, **fields: Any) -> int:
    pk = conn.execute(insert(schedule_items).values(**fields)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def remove_schedule_item(conn: Connection, item_id: int) -> None:
    conn.execute(delete(schedule_items).where(schedule_items.c.id == item_id))
