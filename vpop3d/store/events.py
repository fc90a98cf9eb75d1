"""The event log: notable server events an admin can read back (web admin, CLI)."""

from __future__ import annotations

import time

from sqlalchemy import Connection, insert, select

from vpop3d.store.rows import Event
from vpop3d.store.tables import events


def add(conn: Connection, level: str, source: str, text: str) -> None:
    conn.execute(insert(events).values(at=time.time(), level=level, source=source, text=text))


def recent(conn: Connection, limit: int = 100) -> list[Event]:
    rows = conn.execute(select(events).order_by(events.c.id.desc()).limit(limit))
    return [Event(r.id, r.at, r.level, r.source, r.text) for r in rows]
