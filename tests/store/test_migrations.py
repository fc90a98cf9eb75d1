"""Alembic migrations build exactly the schema that ``tables.metadata`` describes."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from tests.support.database import empty_database
from vpop3d.store import migrate
from vpop3d.store.db import make_engine
from vpop3d.store.tables import metadata


def test_migrations_match_metadata(tmp_path: Path) -> None:
    """Upgrading an empty database to head leaves no difference from the table definitions."""
    engine = make_engine(empty_database(tmp_path))
    try:
        assert "migrated from empty" in migrate.ensure(engine, auto_migrate=True)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], "schema/versions is behind vpop3d/store/tables.py: " + repr(diff)
        assert "current" in migrate.ensure(engine, auto_migrate=False)
    finally:
        engine.dispose()


def test_schema_refused_when_behind_without_auto_migrate(tmp_path: Path) -> None:
    """An empty database with auto_migrate off raises a SchemaError naming the fix."""
    engine = create_engine(empty_database(tmp_path))
    try:
        with pytest.raises(migrate.SchemaError, match="vpop3d migrate"):
            migrate.ensure(engine, auto_migrate=False)
    finally:
        engine.dispose()
