"""POP3 throughput: messages/s and sessions/s for concurrent clients, and a huge mailbox.

    python bench/pop3_bench.py [--clients 10] [--sessions 3] [--messages 50]
                               [--size 10240] [--big 100000]

The server is vpop3d's POP3 listener on 127.0.0.1 (ephemeral port) in this process,
built by ``vpop3d.wiring_pop3`` over a fresh SQLite store and file blob store in a
temp directory, exactly as in production (lease lock per maildrop, snapshot from the
database, bodies streamed from the blob files). Each client is a separate process
running stdlib poplib against its own mailbox (POP3 locks are per mailbox): per
session it logs in, STAT, UIDL, RETR every message, QUIT (messages are kept, so every
session downloads the same mailbox). Rates are totals / (last client finish - first
client start).

Then one mailbox with ``--big`` messages (rows sharing one stored body, inserted in
bulk) is timed for USER/PASS (lock + snapshot), STAT and UIDL.
"""

from __future__ import annotations

import argparse
import functools
import poplib
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, insert
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString

from vpop3d.app.auth import AccountAuthenticator
from vpop3d.app.bootstrap import first_run
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.app.notify import ChangeBus
from vpop3d.app.passwords import StoredSecrets, secrets_for
from vpop3d.app.settings import Settings
from vpop3d.config import ListenerSpec, defaults
from vpop3d.context import ServerContext
from vpop3d.store import folders, users
from vpop3d.store.blobs import FileBlobStore
from vpop3d.store.db import Database, make_engine
from vpop3d.store.messages import new_uidl
from vpop3d.store.tables import messages as message_table
from vpop3d.store.tables import metadata
from vpop3d.wiring_pop3 import build_pop3_factory

PASSWORD = "benchpass1"


def make_body(size: int, number: int) -> bytes:
    head = b"Subject: bench %d\r\nFrom: a@remote.test\r\n\r\n" % number
    line = b"x" * 76 + b"\r\n"
    return head + line * max(0, (size - len(head)) // len(line))


@functools.cache
def _secrets() -> StoredSecrets:
    return secrets_for(PASSWORD, keep_plain=False)  # argon2 once, not per user


def add_user(conn: Connection, name: str) -> int:
    stored = _secrets()
    user = users.add(conn, name, stored.password_hash, scram_sha256=stored.scram_sha256)
    folders.inbox(conn, user.id)
    return user.id


def fill_big(conn: Connection, blobs: FileBlobStore, user_id: int, count: int) -> None:
    """``count`` INBOX rows sharing one body: what matters is the row count."""
    spool = blobs.new_spool()
    body = make_body(2048, 0)
    spool.write(body)
    blob_id = blobs.commit(conn, spool, refs=count)
    folder = folders.inbox(conn, user_id)
    first_uid, modseq = folders.allocate(conn, folder.id, count)
    now = time.time()
    rows = [
        {
            "folder_id": folder.id,
            "uid": first_uid + n,
            "modseq": modseq,
            "flags": 0,
            "keywords": "",
            "internal_date": int(now),
            "size": len(body),
            "uidl": new_uidl(),
            "blob_id": blob_id,
            "envelope_from": "",
            "envelope_to": "",
            "held": False,
            "created_at": now,
        }
        for n in range(count)
    ]
    for start in range(0, count, 10_000):
        conn.execute(insert(message_table), rows[start : start + 10_000])


@dataclass(frozen=True)
class ClientResult:
    started: float
    finished: float
    retrieved: int
    octets: int
    login_seconds: float  # USER+PASS: argon2 verification, lease, snapshot
    retr_seconds: float  # time spent inside RETR commands


def client(port: int, user: str, sessions: int) -> ClientResult:
    """One client process: ``sessions`` full download sessions."""
    started = time.perf_counter()
    retrieved = octets = 0
    login = retr = 0.0
    for _ in range(sessions):
        pop = poplib.POP3("127.0.0.1", port, timeout=120)
        before = time.perf_counter()
        pop.user(user)
        pop.pass_(PASSWORD)
        login += time.perf_counter() - before
        count, _ = pop.stat()
        pop.uidl()
        before = time.perf_counter()
        for number in range(1, count + 1):
            _, _, size = pop.retr(number)
            retrieved += 1
            octets += size
        retr += time.perf_counter() - before
        pop.quit()
    return ClientResult(started, time.perf_counter(), retrieved, octets, login, retr)


def timed(label: str, action: Callable[[], object]) -> object:
    start = time.perf_counter()
    result = action()
    print(f"  {label:<28} {1000 * (time.perf_counter() - start):9.1f} ms")
    return result


def big_mailbox(port: int, user: str) -> None:
    pop = cast(poplib.POP3, timed("connect + greeting", lambda: poplib.POP3("127.0.0.1", port)))
    timed("USER + PASS (lock, snapshot)", lambda: (pop.user(user), pop.pass_(PASSWORD)))
    stat = cast(tuple[int, int], timed("STAT", pop.stat))
    listing = cast(tuple[bytes, list[bytes], int], timed("UIDL (all)", pop.uidl))
    timed("LIST (all)", pop.list)
    timed("RETR last", lambda: pop.retr(stat[0]))
    timed("QUIT", pop.quit)
    print(f"  messages: {stat[0]}, UIDL lines: {len(listing[1])}, octets: {stat[1]}")


async def run(args: argparse.Namespace, base: Path) -> None:
    url = f"sqlite:///{base / 'bench.sqlite3'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    db = Database(url, cast(Any, reactor), engine=engine, threads=8)
    db.start()
    db.run_sync(first_run, "mail.example.test")
    settings = Settings(db)
    settings.load_sync()
    blobs = FileBlobStore(base / "data")
    print(f"filling {args.clients} mailboxes x {args.messages} messages of {args.size} octets")
    for index in range(args.clients):
        user_id = db.run_sync(add_user, f"user{index}")
        for number in range(args.messages):
            spool = blobs.new_spool()
            spool.write(make_body(args.size, number))
            db.run_sync(store_message, blobs, spool, [FolderTarget(user_id)])
    context = ServerContext(
        config=defaults(base, "mail.example.test"),
        reactor=reactor,
        database=db,
        settings=settings,
        blob_store=blobs,
        bus=ChangeBus(),
        authenticator=AccountAuthenticator(db, settings),
        tls=None,
    )
    spec = ListenerSpec("pop3", "pop3", "pop3", 0, "127.0.0.1", False, "off", False)
    factory = build_pop3_factory(cast(Any, context), spec)
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    pop3_port: int = port.getHost().port

    def clients() -> list[ClientResult]:
        with ProcessPoolExecutor(args.clients, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(client, pop3_port, f"user{i}", args.sessions)
                for i in range(args.clients)
            ]
            return [future.result() for future in futures]

    results = await threads.deferToThread(clients)
    elapsed = max(r.finished for r in results) - min(r.started for r in results)
    total = sum(r.retrieved for r in results)
    octets = sum(r.octets for r in results)
    sessions = args.clients * args.sessions
    print(
        f"{args.clients} concurrent clients, {sessions} sessions, {total} RETRs "
        f"({octets / 1e6:.1f} MB) in {elapsed:.2f} s"
    )
    print(f"  messages/s (overall):   {total / elapsed:9.1f}")
    print(f"  sessions/s:             {sessions / elapsed:9.1f}")
    print(f"  MB/s (overall):         {octets / 1e6 / elapsed:9.1f}")
    retr_rate = sum(r.retrieved / r.retr_seconds for r in results if r.retr_seconds)
    print(f"  messages/s (RETR phase):{retr_rate:9.1f}")
    login_ms = 1000 * sum(r.login_seconds for r in results) / sessions
    print(f"  mean USER+PASS:         {login_ms:9.1f} ms (argon2 verify + lease + snapshot)")

    if args.big:
        print(f"filling one mailbox with {args.big} messages")
        big_id = db.run_sync(add_user, "big")
        db.run_sync(fill_big, blobs, big_id, args.big)
        print(f"mailbox of {args.big} messages:")
        await threads.deferToThread(big_mailbox, pop3_port, "big")
    await port.stopListening()
    db.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--size", type=int, default=10240)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pop3-bench-") as tmp:
        outcome: list[BaseException] = []

        def done(result: object) -> None:
            if isinstance(result, BaseException):
                outcome.append(result)
            reactor.stop()

        def start() -> None:
            Deferred.fromCoroutine(run(args, Path(tmp))).addBoth(
                lambda r: done(r.value if hasattr(r, "value") else r)
            )

        reactor.callWhenRunning(start)
        reactor.run()
        if outcome:
            raise outcome[0]


if __name__ == "__main__":
    main()
