"""Mappings (seed-1 §17): pattern -> targets, evaluated in ``position`` order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from vpop3d.store.rows import Mapping
from vpop3d.store.tables import mappings


def _row(r: Row[Any]) -> Mapping:
    return Mapping(
        id=r.id,
        position=r.position,
        pattern=r.pattern,
        targets=tuple(json.loads(r.targets)),
        direction=r.direction,
        enabled=bool(r.enabled),
        kind=r.kind,
        collector_id=r.collector_id,
    )


def list_all(conn: Connection) -> list[Mapping]:
    return [
        _row(r) for r in conn.execute(select(mappings).order_by(mappings.c.position, mappings.c.id))
    ]


def add(
    conn: Connection,
    pattern: str,
    targets: Sequence[str],
    direction: str = "to",
    *,
    kind: str = "always",
    collector_id: int | None = None,
) -> Mapping:
    position = (
        int(conn.execute(select(func.coalesce(func.max(mappings.c.position), 0))).scalar_one()) + 1
    )
    pk = conn.execute(
        insert(mappings).values(
            pattern=pattern,
            targets=json.dumps(list(targets)),
            direction=direction,
            position=position,
            enabled=True,
            kind=kind,
            collector_id=collector_id,
        )
    ).inserted_primary_key
    assert pk is not None
    return Mapping(
        int(pk[0]), position, pattern, tuple(targets), direction, True, kind, collector_id
    )


def remove(conn: Connection, mapping_id: int) -> bool:
    return conn.execute(delete(mappings).where(mappings.c.id == mapping_id)).rowcount > 0


def remove_pattern(conn: Connection, pattern: str, direction: str = "to") -> int:
    return conn.execute(
        delete(mappings).where(mappings.c.pattern == pattern, mappings.c.direction == direction)
    ).rowcount
