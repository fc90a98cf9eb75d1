"""Shutdown order: the database stops last, and work sent after it stopped fails."""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from vpop3d.store.db import Database, DatabaseService, DatabaseStopped
from vpop3d.tap import _Root


class _Recorder:
    """Stands in for a Database: records when it is stopped."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def start(self) -> None:
        self.log.append("database started")

    def stop(self) -> None:
        self.log.append("database stopped")


class _Slow(Service):
    """A service whose stop waits for work in flight (like the blob sweeper)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.pending: Deferred[None] = Deferred()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.log.append("slow stopping")
        return self.pending.addCallback(lambda _: self.log.append("slow stopped"))


def test_database_stops_after_the_other_services_finish() -> None:
    """A service still finishing database work keeps the pool until it is done."""
    log: list[str] = []
    root = _Root()
    DatabaseService(_Recorder(log)).setServiceParent(root)  # type: ignore[arg-type]
    slow = _Slow(log)
    slow.setServiceParent(root)
    root.startService()
    stopped = root.stopService()
    assert log == ["database started", "slow stopping"]
    slow.pending.callback(None)
    assert log[-2:] == ["slow stopped", "database stopped"]
    assert stopped.called


def test_work_after_stop_fails_instead_of_hanging(tmp_path: Path) -> None:
    """read/write/call_in_pool on a stopped database fail at once with DatabaseStopped."""
    database = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}", Clock())  # type: ignore[arg-type]
    database.start()
    database.stop()
    failures: list[BaseException | None] = []

    def caught(failure: Failure) -> None:
        failures.append(failure.value)

    jobs: list[Deferred[None]] = [
        database.write(lambda conn: None),
        database.read(lambda conn: None),
        database.call_in_pool(lambda: None),
        database.call_cpu(lambda: None),
    ]
    for job in jobs:
        job.addErrback(caught)
    assert len(failures) == 4
    assert all(isinstance(f, DatabaseStopped) for f in failures)
