"""Our ESMTP client against our own SMTP server: a LAN-forward entry in a running
vpop3d is sent by its queue runner to its own SMTP port and filed in bob's INBOX."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.app.queue_support import lan_route
from tests.support.server import add_user, start_server
from vpop3d.app.bootstrap import first_run
from vpop3d.store import folders, messages, settings, users
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import make_blob_store
from vpop3d.store.db import Database

pytestmark = pytest.mark.network
BODY = b"From: carol@remote.test\r\nSubject: via lan\r\n\r\nHello bob.\r\n"


def test_lan_forward_into_our_own_smtp_server(tmp_path: Path, database_url: str) -> None:
    """The runner's client talks to our server (EHLO, STARTTLS if offered, DATA)."""
    db = Database(database_url, threads=1)
    db.run_sync(first_run, "mail.example.test")
    db.run_sync(settings.put, "queue.poll_seconds", 1)
    db.engine.dispose()
    server = start_server(tmp_path, database_url)
    try:
        add_user(server, "bob")
        blobs = make_blob_store("file", server.data_dir)
        route = lan_route("127.0.0.1", server.ports["smtp"])

        def enqueue(conn: Connection) -> int:
            spool = blobs.new_spool()
            spool.write(BODY)
            blob_id = blobs.commit(conn, spool, refs=1)
            return queue_repo.enqueue(
                conn,
                blob_id=blob_id,
                sender="carol@remote.test",
                size=len(BODY),
                recipients=[queue_repo.QueuedRecipient("bob@example.test", route)],
                kind="lan",
            )

        server.db.run_sync(enqueue)

        def inbox(conn: Connection) -> int:
            user = users.by_name(conn, "bob")
            assert user is not None
            return messages.count(conn, folders.inbox(conn, user.id).id)

        def settled() -> bool:
            # Delivered into bob's INBOX, and the runner has recorded the 250.
            return bool(
                server.db.run_sync(inbox) == 1 and server.db.run_sync(queue_repo.count) == 0
            )

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not settled():
            time.sleep(0.2)
        assert server.db.run_sync(inbox) == 1, server.log()[-3000:]
        assert server.db.run_sync(queue_repo.count) == 0
    finally:
        server.stop()
