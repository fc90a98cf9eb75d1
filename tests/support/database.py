"""Test databases: a temp SQLite file, or a fresh schema on the PostgreSQL server named by
``VPOP3D_TEST_DATABASE`` (CI runs the suite once on each)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

from vpop3d.store import migrate
from vpop3d.store.tables import metadata

PG_URL = os.environ.get("VPOP3D_TEST_DATABASE", "")


def reset_database(tmp_path: Path) -> str:
    """A URL of an empty database at schema head, private to one test."""
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    from vpop3d.store.db import make_engine

    stamped = make_engine(url)
    try:
        _stamp(stamped)
    finally:
        stamped.dispose()
    return url


def _stamp(engine: object) -> None:
    from alembic import command

    cfg = migrate._config()
    with engine.begin() as conn:  # type: ignore[attr-defined]  # an Engine
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def empty_database(tmp_path: Path) -> str:
    """A URL of a database with no tables at all (migration tests)."""
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return PG_URL
    return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
