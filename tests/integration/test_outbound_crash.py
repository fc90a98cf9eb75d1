"""A real server killed mid-send and restarted: nothing lost, nothing resent after a 250."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.integration.outbound_sink import Sink
from tests.support.server import start_server
from vpop3d.app.bootstrap import first_run
from vpop3d.store import connectors, settings
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import make_blob_store
from vpop3d.store.db import Database

pytestmark = pytest.mark.network


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _prepare(database_url: str, data_dir: Path, relay_port: int) -> list[int]:
    """First-run the database, enable sending via the sink, queue two messages."""
    db = Database(database_url, threads=1)
    blobs = make_blob_store("file", data_dir)

    def setup(conn: Connection) -> list[int]:
        first_run(conn, "mail.example.test")
        settings.put(conn, "schedule.enabled", True)
        settings.put(conn, "queue.lease_seconds", 3)
        settings.put(conn, "queue.poll_seconds", 1)
        cid = connectors.ensure_default(conn)
        connectors.update_sender(
            conn, cid, method="relay", relay_servers=f"127.0.0.1:{relay_port}", encryption="none"
        )
        ids = []
        for n in (1, 2):
            data = f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode()
            spool = blobs.new_spool()
            spool.write(data)
            blob_id = blobs.commit(conn, spool, refs=1)
            ids.append(
                queue_repo.enqueue(
                    conn,
                    blob_id=blob_id,
                    sender="alice@example.test",
                    size=len(data),
                    recipients=[queue_repo.QueuedRecipient(f"r{n}@remote.test")],
                )
            )
        return ids

    try:
        return db.run_sync(setup)
    finally:
        db.engine.dispose()


def test_kill_mid_send_then_restart(tmp_path: Path, database_url: str) -> None:
    """Message 1 answered 250 before the kill is never resent; message 2, unanswered,
    is delivered after the restart; nothing is lost."""
    sink = Sink()
    sink.handler.stall_data = threading.Event()
    sink.handler.stall_after = 1  # answer the first DATA, hang on the second
    sink.start()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first, second = _prepare(database_url, data_dir, sink.port)
    server = start_server(tmp_path, database_url)
    try:

        def states(queue_id: int) -> list[str]:
            entry = server.db.run_sync(queue_repo.entry, queue_id)
            return [] if entry is None else [r.state for r in entry.recipients]

        # The 250 is committed at once, before message 2 is even sent.
        _wait(
            "first delivery",
            lambda: len(sink.handler.received) == 1 and states(first) == ["delivered"],
        )
        _wait("second send in progress", lambda: sink.handler.data_started >= 2)
        assert states(second) == ["pending"]
        server.kill()
        sink.handler.stall_data.set()
        time.sleep(0.5)
        assert [r.recipients for r in sink.handler.received] == [["r1@remote.test"]]

        server.start()
        _wait("second delivery", lambda: states(second) == [], timeout=90)
        got = [r.recipients for r in sink.handler.received]
        assert got.count(["r1@remote.test"]) == 1
        assert got.count(["r2@remote.test"]) == 1
        assert server.db.run_sync(queue_repo.count) == 0
    finally:
        server.stop()
        sink.stop()
