"""vpop3d as a real ``twistd -n vpop3d`` child with a throw-away tap.conf.

The store is seeded before the server starts (same users, same corpus as the peers);
SQLite in the temp dir by default, or a PostgreSQL URL whose schema is wiped first.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, text

from bench import corpus
from bench.plan import PASSWORD, Plan, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
TWISTD = (sys.executable, "-c", "from twisted.scripts.twistd import run; run()")
OFF = ("submission", "smtps", "pop3s", "imaps", "ldap", "status")


@functools.cache
def _secrets() -> Any:
    from vpop3d.app.passwords import secrets_for

    return secrets_for(PASSWORD, keep_plain=False)  # argon2 once for all users


def _add_user(conn: Connection, name: str) -> int:
    from vpop3d.store import folders, users

    stored = _secrets()
    user = users.add(conn, name, stored.password_hash, scram_sha256=stored.scram_sha256)
    folders.inbox(conn, user.id)
    return user.id


def _fill_big(conn: Connection, blobs: Any, user_id: int, count: int) -> None:
    """``count`` INBOX rows sharing one stored body; every third one unseen."""
    from vpop3d.store import folders
    from vpop3d.store.messages import new_uidl
    from vpop3d.store.tables import messages

    spool = blobs.new_spool()
    spool.write(corpus.BIG_BODY)
    blob_id = blobs.commit(conn, spool, refs=count)
    folder = folders.inbox(conn, user_id)
    first_uid, modseq = folders.allocate(conn, folder.id, count)
    now = int(time.time())
    size = len(corpus.BIG_BODY)
    for start in range(0, count, 10_000):
        conn.execute(
            insert(messages),
            [
                {
                    "folder_id": folder.id,
                    "uid": first_uid + n,
                    "modseq": modseq,
                    "flags": 1 if n % 3 else 0,  # \Seen
                    "keywords": "",
                    "internal_date": now,
                    "size": size,
                    "uidl": new_uidl(),
                    "blob_id": blob_id,
                    "envelope_from": "",
                    "envelope_to": "",
                    "held": False,
                    "created_at": now,
                }
                for n in range(start, min(count, start + 10_000))
            ],
        )


def _web_users(conn: Connection, count: int) -> None:
    from vpop3d.store.tables import users

    stored = _secrets()
    now = time.time()
    rows = [
        {
            "name": f"user{i:05d}",
            "password_hash": stored.password_hash,
            "real_name": f"User {i}",
            "created_at": now,
        }
        for i in range(count)
    ]
    conn.execute(insert(users), rows)


class Vpop3d:
    name = "vpop3d"
    serves = frozenset({"smtp", "outbound", "pop3", "imap", "web"})

    def __init__(
        self,
        directory: Path,
        database_url: str | None,
        db: str = "sqlite",
        also: tuple[int, ...] = (),
    ) -> None:
        self.dir = directory
        self.url = database_url or f"sqlite:///{directory / 'vpop3d.sqlite3'}"
        self.db = db  # the table's "db" column
        self.also = also  # further process trees counted as ours (our PostgreSQL)
        self.ports = {name: free_port() for name in ("smtp", "pop3", "imap", "http")}
        self.ports["web"] = self.ports["http"]
        self.sink_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def setup(self, plan: Plan) -> None:
        from vpop3d.app.bootstrap import first_run
        from vpop3d.app.mailstore import FolderTarget, store_message
        from vpop3d.store import migrate, users
        from vpop3d.store import settings as settings_repo
        from vpop3d.store.blobs import make_blob_store
        from vpop3d.store.db import Database

        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        db = Database(self.url)
        if self.url.startswith("postgresql"):
            with db.engine.begin() as conn:  # a throw-away database: start empty
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate.ensure(db.engine, auto_migrate=True)
        db.run_sync(first_run, "mail.example.test")
        admin = db.read_sync(users.by_name, "postmaster")
        assert admin is not None
        db.run_sync(users.update_fields, admin.id, must_change_password=False)
        for key, value in (
            ("wizard.dont_ask", True),
            ("imap.max_user_logins", 100_000),
            ("imap.max_ip_connections", 100_000),
            ("smtp.max_connections_per_ip", 100),
            ("schedule.enabled", False),  # the outbound queue waits for outbound_release
            ("queue.poll_seconds", 1),
        ):
            db.run_sync(settings_repo.put, key, value)
        blobs = make_blob_store("file", data)
        for name in plan.all_users:
            user_id = db.run_sync(_add_user, name)
            if name in plan.pop_users or name in plan.imap_users:
                for raw in corpus.mailbox(f"{name}@example.test"):
                    spool = blobs.new_spool()
                    spool.write(raw)
                    db.run_sync(store_message, blobs, spool, [FolderTarget(user_id)])
            elif name == "idle":
                for raw in corpus.mailbox()[: plan.idle_messages]:
                    spool = blobs.new_spool()
                    spool.write(raw)
                    db.run_sync(store_message, blobs, spool, [FolderTarget(user_id)])
            elif name == "big":
                db.run_sync(_fill_big, blobs, user_id, plan.big_count)
        db.run_sync(_web_users, plan.web_users)
        db.engine.dispose()
        lines = [
            "[server]",
            "hostname = mail.example.test",
            f"data_dir = {data}",
            f"database = {self.url}",
        ]
        for name, port in self.ports.items():
            if name != "web":
                lines += [f"[{name}]", f"port = {port}", "interface = 127.0.0.1"]
        for name in OFF:
            lines += [f"[{name}]", "port = 0"]
        (self.dir / "tap.conf").write_text("\n".join(lines) + "\n")

    def outbound_prepare(self, plan: Plan) -> None:
        """Queue ``plan.outbound`` 10 KB messages (one remote recipient each) for the
        default connection, relaying to the sink; held while the schedule is off."""
        from vpop3d.store import connectors
        from vpop3d.store import queue as queue_repo
        from vpop3d.store.blobs import make_blob_store
        from vpop3d.store.db import Database

        db = Database(self.url)
        blobs = make_blob_store("file", self.dir / "data")
        cid = db.run_sync(connectors.ensure_default)
        db.run_sync(
            connectors.update_sender,
            cid,
            method="relay",
            relay_servers=f"127.0.0.1:{self.sink_port}",
            encryption="none",
        )
        bodies = corpus.smtp_messages()

        def fill(conn: Connection) -> None:
            for n in range(plan.outbound):
                body = bodies[n % len(bodies)]
                spool = blobs.new_spool()
                spool.write(body)
                queue_repo.enqueue(
                    conn,
                    blob_id=blobs.commit(conn, spool, refs=1),
                    sender="bench@example.test",
                    size=len(body),
                    recipients=[queue_repo.QueuedRecipient(f"r{n}@remote.test")],
                    now=time.time() - 1,
                )

        db.run_sync(fill)
        db.engine.dispose()

    def outbound_release(self) -> None:
        """Turn the schedule on: the server sees it at its next settings poll (5 s)
        and sends at its next queue poll (1 s)."""
        from vpop3d.store import settings as settings_repo
        from vpop3d.store.db import Database

        db = Database(self.url)
        db.run_sync(settings_repo.put, "schedule.enabled", True)
        db.engine.dispose()

    def outbound_reset(self) -> None:
        from vpop3d.store import settings as settings_repo
        from vpop3d.store.db import Database

        db = Database(self.url)
        db.run_sync(settings_repo.put, "schedule.enabled", False)
        db.engine.dispose()

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.dir / "vpop3d.log", "ab") as log:
            self.process = subprocess.Popen(
                [*TWISTD, "-n", "--pidfile=", "vpop3d", "-c", str(self.dir / "tap.conf")],
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        for name in ("smtp", "pop3", "imap", "http"):
            wait_for_port(self.ports[name])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
