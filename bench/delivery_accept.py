"""Throughput of the delivery use case alone: RCPT checks + DATA-end commit, no sockets.

Runs ``Delivery.check_recipient`` and ``Delivery.accept`` for 10 KB messages to local
mailboxes from 10 concurrent "sessions" against a temp SQLite database and file blob
store (fsync on), and prints accepted messages per second. It bounds what the SMTP
listener can reach on this machine.

    python bench/delivery_accept.py [messages] [concurrency]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet import reactor as _reactor

from vpop3d.app import accounts
from vpop3d.app.access import AccessControl
from vpop3d.app.bootstrap import first_run
from vpop3d.app.delivery import Delivery
from vpop3d.app.notify import ChangeBus
from vpop3d.app.routing import Router
from vpop3d.app.settings import Settings
from vpop3d.ports import Envelope, RecipientParams, SMTPContext
from vpop3d.store.blobs import FileBlobStore
from vpop3d.store.db import Database, make_engine
from vpop3d.store.tables import metadata

BODY = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 130  # about 10 KB


async def run(total: int, concurrency: int, base: Path) -> float:
    reactor: Any = _reactor  # the installed reactor: threads and time
    url = f"sqlite:///{base / 'bench.sqlite3'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    db = Database(url, reactor, engine=engine, threads=concurrency)
    db.start()
    db.run_sync(first_run, "mail.example.test")
    for i in range(concurrency):
        db.run_sync(accounts.add_user, f"user{i}", "benchpass1")
    settings = Settings(db)
    settings.load_sync()
    delivery = Delivery(
        db,
        FileBlobStore(base / "data"),
        Router(db, reactor),
        AccessControl(settings, reactor),
        ChangeBus(),
        settings,
        clock=reactor,
        hostname="mx.example.test",
        tmp_dir=base / "data" / "tmp",
    )
    context = SMTPContext("smtp", "203.0.113.9", "client.example.net", False, None)

    async def session(n: int, count: int) -> None:
        for _ in range(count):
            rcpt = f"user{n}@example.test"
            env = Envelope("sender@remote.test")
            await delivery.check_sender(context, env)
            await delivery.check_recipient(context, env, rcpt)
            env.recipients.append((rcpt, RecipientParams()))
            spool = delivery.open_spool()
            spool.write(BODY)
            await delivery.accept(context, env, spool)

    start = time.perf_counter()
    per = total // concurrency
    await defer.gatherResults(
        [defer.Deferred.fromCoroutine(session(n, per)) for n in range(concurrency)]
    )
    elapsed = time.perf_counter() - start
    db.stop()
    return per * concurrency / elapsed


def main(argv: list[str]) -> None:
    total = int(argv[1]) if len(argv) > 1 else 500
    concurrency = int(argv[2]) if len(argv) > 2 else 10

    async def body(_reactor: object) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            rate = await run(total, concurrency, Path(tmp))
        print(f"delivery.accept: {rate:.1f} messages/s ({total} x 10 KB, {concurrency} concurrent)")

    task.react(lambda r: defer.Deferred.fromCoroutine(body(r)))


if __name__ == "__main__":
    main(sys.argv)
