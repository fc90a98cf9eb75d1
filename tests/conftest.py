"""Shared fixtures: a private database per test (SQLite, or PostgreSQL when
VPOP3D_TEST_DATABASE is set), the in-process stack, and a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import PG_URL, reset_database
from tests.support.server import ServerProcess, start_server
from tests.support.stack import Stack, make_stack


def pytest_report_header() -> str:
    return "database: " + ("PostgreSQL (VPOP3D_TEST_DATABASE)" if PG_URL else "SQLite")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """URL of an empty database at schema head, private to this test."""
    return reset_database(tmp_path)


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    """Database, blob store, settings and authenticator, bootstrapped like a first run."""
    from twisted.internet import reactor

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    built = make_stack(data_dir, database_url, reactor)
    built.db.start()
    yield built
    built.db.stop()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """A running ``twistd -n vpop3d`` on free loopback ports with its own database."""
    process = start_server(tmp_path, database_url)
    yield process
    process.stop()
