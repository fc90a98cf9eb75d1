"""Regenerate revision 0001 from ``vpop3d.store.tables`` (development only, before 1.0).

Until the first release every schema change folds into the initial revision; after it,
changes get new revisions with ``alembic revision --autogenerate``. Run from the repo:
``python schema/regenerate_initial.py``; then review the file and run the tests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def main() -> None:
    for old in (HERE / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        cfg = Config()
        cfg.set_main_option("script_location", str(HERE))
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{scratch}/gen.sqlite3")
        cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")


if __name__ == "__main__":
    main()
