"""Bring a database to the schema this code expects, or say clearly why not.

The server applies pending Alembic revisions at start when ``auto_migrate`` is on
(the default); otherwise it refuses to start on a database that is not at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import schema


class SchemaError(Exception):
    """The database schema is not the one this version needs."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent))
    return cfg


def head() -> str:
    heads = ScriptDirectory.from_config(_config()).get_heads()
    assert len(heads) == 1, f"schema has several heads: {heads}"
    return heads[0]


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ensure(engine: Engine, *, auto_migrate: bool) -> str:
    """Migrate (or check) ``engine``; return a sentence saying what was done."""
    before = current(engine)
    target = head()
    if before == target:
        return f"database schema is current ({target})"
    if not auto_migrate:
        state = "empty" if before is None else f"at revision {before}"
        raise SchemaError(
            f"the database is {state} but this version needs revision {target}; "
            "run 'vpop3d migrate' or set auto_migrate = yes in [server]"
        )
    upgrade(engine)
    return f"database schema migrated from {before or 'empty'} to {target}"
