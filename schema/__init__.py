"""Alembic migrations for vpop3d's schema (``vpop3d.store.tables.metadata``).

Applied by ``vpop3d.store.migrate`` at start (``auto_migrate``) or by ``vpop3d
migrate``. New revisions: ``alembic -c schema/alembic.ini revision --autogenerate -m
"what changed"`` against a database at head, then review the generated file.
"""
