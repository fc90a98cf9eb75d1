"""Outbound throughput: the QueueRunner sending queued 10 KB messages to a local sink.

Queues N messages (one recipient each) in a temp SQLite database and file blob store
(fsync on), then times one Connection run in relay mode to a Twisted sink on
127.0.0.1 that answers 250 to everything (PIPELINING offered). Every 250 is
committed before the next message is sent, so this is bounded by the database's
commit rate. Prints messages per second.

    python bench/outbound_bench.py [messages] [direct-domains]

With ``direct-domains`` > 0 the recipients are spread over that many domains sent
in direct mode (one connection per domain, up to 10 at a time) through a DNS
override that points every domain at the sink.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet import reactor as _reactor
from twisted.protocols.basic import LineReceiver

from vpop3d.app.bootstrap import first_run
from vpop3d.app.queue import QueueRunner
from vpop3d.app.settings import Settings
from vpop3d.store import connectors
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import FileBlobStore
from vpop3d.store.db import Database, make_engine
from vpop3d.store.tables import metadata

BODY = b"From: bench@example.test\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 130


class Sink(LineReceiver):
    """Accepts everything; counts messages."""

    delimiter = b"\r\n"
    count = 0

    def connectionMade(self) -> None:
        self.in_data = False
        self.sendLine(b"220 sink ESMTP")

    def lineReceived(self, line: bytes) -> None:
        if self.in_data:
            if line == b".":
                self.in_data = False
                Sink.count += 1
                self.sendLine(b"250 2.0.0 ok")
            return
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.sendLine(b"250-sink")
            self.sendLine(b"250-PIPELINING")
            self.sendLine(b"250 8BITMIME")
        elif verb == b"DATA":
            self.in_data = True
            self.sendLine(b"354 go")
        elif verb == b"QUIT":
            self.sendLine(b"221 bye")
            if self.transport is not None:
                self.transport.loseConnection()
        else:
            self.sendLine(b"250 ok")


async def run(total: int, domains: int, base: Path) -> float:
    reactor: Any = _reactor
    url = f"sqlite:///{base / 'bench.sqlite3'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    db = Database(url, reactor, engine=engine, threads=4)
    db.start()
    db.run_sync(first_run, "mail.example.test")
    listener = reactor.listenTCP(0, protocol.Factory.forProtocol(Sink), interface="127.0.0.1")
    port = listener.getHost().port
    cid = db.run_sync(connectors.ensure_default)
    if domains:
        db.run_sync(
            connectors.update_sender, cid, method="direct", dns_overrides=f"* 127.0.0.1:{port}"
        )
    else:
        db.run_sync(
            connectors.update_sender,
            cid,
            method="relay",
            relay_servers=f"127.0.0.1:{port}",
            encryption="none",
        )
    blobs = FileBlobStore(base / "data")

    def fill(conn: object) -> None:
        for i in range(total):
            spool = blobs.new_spool()
            spool.write(BODY)
            blob_id = blobs.commit(conn, spool, refs=1)  # type: ignore[arg-type]
            domain = f"d{i % domains}.test" if domains else "remote.test"
            queue_repo.enqueue(
                conn,  # type: ignore[arg-type]
                blob_id=blob_id,
                sender="bench@example.test",
                size=len(BODY),
                recipients=[queue_repo.QueuedRecipient(f"r{i}@{domain}")],
                now=time.time() - 1,
            )

    db.run_sync(fill)
    settings = Settings(db)
    settings.load_sync()
    runner = QueueRunner(db, blobs, settings, reactor, hostname="mail.example.test")
    try:
        started = time.perf_counter()
        report = await runner.run_connection(cid)
        elapsed = time.perf_counter() - started
        assert report.delivered == total, report
        assert Sink.count == total
    finally:
        await defer.maybeDeferred(listener.stopListening)
        db.stop()
    return total / elapsed


def main(argv: list[str]) -> None:
    total = int(argv[1]) if len(argv) > 1 else 500
    domains = int(argv[2]) if len(argv) > 2 else 0
    with tempfile.TemporaryDirectory() as tmp:

        async def go() -> None:
            rate = await run(total, domains, Path(tmp))
            mode = f"direct to {domains} domains" if domains else "relay"
            print(
                f"outbound ({mode}): {total} messages of {len(BODY)} bytes: {rate:.0f} messages/s"
            )

        task.react(lambda _r: defer.Deferred.fromCoroutine(go()))


if __name__ == "__main__":
    main(sys.argv)
