"""Run-time settings as JSON values under dotted keys (``pop3.max_failed_logins``)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from vpop3d.store.tables import settings


def get_all(conn: Connection) -> dict[str, Any]:
    return {row.key: json.loads(row.value) for row in conn.execute(select(settings))}


def get(conn: Connection, key: str, default: Any = None) -> Any:
    value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    return default if value is None else json.loads(value)


def put(conn: Connection, key: str, value: Any) -> None:
    text = json.dumps(value, sort_keys=True)
    now = time.time()
    values = {"key": key, "value": text, "updated_at": now}
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(settings).values(values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["key"], set_={"value": text, "updated_at": now}
            )
        )
    elif conn.dialect.name == "sqlite":
        lite = sqlite.insert(settings).values(values)
        conn.execute(
            lite.on_conflict_do_update(
                index_elements=["key"], set_={"value": text, "updated_at": now}
            )
        )
    else:  # pragma: no cover - only the two supported dialects exist
        if (
            conn.execute(update(settings).where(settings.c.key == key).values(value=text)).rowcount
            == 0
        ):
            conn.execute(settings.insert().values(values))


def remove(conn: Connection, key: str) -> None:
    conn.execute(delete(settings).where(settings.c.key == key))


def next_counter(conn: Connection, key: str, floor: int) -> int:
    """Return max(floor, previous + 1) and remember it (UIDVALIDITY allocation)."""
    previous = int(get(conn, key, 0))
    value = max(floor, previous + 1)
    put(conn, key, value)
    return value
