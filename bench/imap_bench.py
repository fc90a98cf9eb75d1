"""IMAP numbers: mixed load, SELECT/FETCH/SEARCH on a huge folder, memory per IDLE session.

    python bench/imap_bench.py [--users 20] [--clients 10] [--rounds 3]
                               [--big 100000] [--idlers 1000]

Mixed load: ``--users`` x ``--clients`` client sessions (separate processes, at most
``--workers`` at once), each ``--rounds`` times: LOGIN, SELECT INBOX, FETCH 1:* (FLAGS
RFC822.SIZE), FETCH of one body, STORE +FLAGS \\Seen, APPEND, STORE \\Deleted on the
appended message, EXPUNGE, LOGOUT. Commands/s = all commands / wall time.

The server is vpop3d's IMAP listener (``vpop3d.wiring_imap``) in this process over a
fresh SQLite store in a temp directory. A folder of ``--big`` messages (rows sharing
one stored body, inserted in bulk) is timed from stdlib imaplib for SELECT,
``FETCH 1:* (FLAGS)`` and ``UID SEARCH UNSEEN``. Then ``--idlers`` connections are
made in-process (StringTransport, no sockets; a stub authenticator so the timing is
not argon2's) and each logs in, selects a 10-message INBOX and enters IDLE; the
traced Python memory growth divided by the count is the per-connection cost.
"""

from __future__ import annotations

import argparse
import imaplib
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, insert
from twisted.internet import task, threads
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import StringTransport

from vpop3d.app.auth import AccountAuthenticator
from vpop3d.app.bootstrap import first_run
from vpop3d.app.imapmail import StoreMailStore
from vpop3d.app.notify import ChangeBus
from vpop3d.app.passwords import secrets_for
from vpop3d.app.settings import Settings
from vpop3d.config import ListenerSpec, defaults
from vpop3d.context import ServerContext
from vpop3d.ports import Principal
from vpop3d.proto.imap.server import IMAPLimits, IMAPServerFactory
from vpop3d.proto.imap.session import IMAPConfig
from vpop3d.store import folders, users
from vpop3d.store.blobs import FileBlobStore
from vpop3d.store.db import Database
from vpop3d.store.messages import new_uidl
from vpop3d.store.tables import messages as message_table
from vpop3d.store.tables import metadata
from vpop3d.wiring_imap import build_imap_factory

PASSWORD = "benchpass1"
BODY = b"From: a@b.test\r\nSubject: bench\r\n\r\n" + b"x" * 2000 + b"\r\n"


def fill(conn: Connection, blobs: FileBlobStore, user_id: int, count: int) -> None:
    """``count`` INBOX rows sharing one body."""
    spool = blobs.new_spool()
    spool.write(BODY)
    spool.finish()
    blob_id = blobs.commit(conn, spool, refs=count)
    folder = folders.inbox(conn, user_id)
    first_uid, modseq = folders.allocate(conn, folder.id, count)
    now = int(time.time())
    rows = [
        {
            "folder_id": folder.id,
            "uid": first_uid + n,
            "modseq": modseq,
            "flags": 1 if n % 3 else 0,
            "keywords": "",
            "internal_date": now,
            "size": len(BODY),
            "uidl": new_uidl(),
            "blob_id": blob_id,
            "envelope_from": "",
            "envelope_to": "",
            "summary": None,
            "held": False,
            "created_at": now,
        }
        for n in range(count)
    ]
    for start in range(0, count, 10_000):
        conn.execute(insert(message_table), rows[start : start + 10_000])


class _StubAuth:
    def authenticate(self, credentials: Any, context: Any) -> Deferred[Principal]:
        return succeed(self.principal)

    def scram_keys(self, username: str) -> Deferred[Any]:
        return succeed(None)

    def plaintext_equivalent_enabled(self) -> bool:
        return False

    principal: Principal


def _client_session(port: int, user: str, rounds: int) -> int:
    """One client's share of the mixed load; returns the number of commands sent."""
    commands = 0
    for _ in range(rounds):
        client = imaplib.IMAP4("127.0.0.1", port, timeout=120)
        client.login(user, PASSWORD)
        client.select("INBOX")
        client.fetch("1:*", "(FLAGS RFC822.SIZE)")
        client.fetch("1", "(BODY.PEEK[])")
        client.store("1", "+FLAGS", "(\\Seen)")
        client.append("INBOX", None, None, BODY)
        _, data = client.search(None, "ALL")
        last = data[0].split()[-1].decode()
        client.store(last, "+FLAGS", "(\\Deleted)")
        client.expunge()
        client.logout()
        commands += 10
    return commands


async def main(reactor_: Any, args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="imap-bench-"))
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    db = Database(url, reactor_)
    metadata.create_all(db.engine)
    db.run_sync(first_run, "mail.example.test")
    db.start()
    try:
        await run(reactor_, args, tmp, db)
    finally:
        db.stop()


async def run(reactor_: Any, args: argparse.Namespace, tmp: Path, db: Database) -> None:
    settings = Settings(db)
    settings.load_sync()
    blobs = FileBlobStore(tmp)
    stored = secrets_for(PASSWORD, keep_plain=False)
    big_id = db.run_sync(users.add, "big", stored.password_hash).id
    idle_id = db.run_sync(users.add, "idler", stored.password_hash).id
    db.run_sync(fill, blobs, big_id, args.big)
    db.run_sync(fill, blobs, idle_id, 10)
    bus = ChangeBus()
    context = ServerContext(
        defaults(tmp, "mail.example.test"),
        reactor_,
        db,
        settings,
        blobs,
        bus,
        AccountAuthenticator(db, settings),
        None,
    )
    spec = ListenerSpec("imap", "imap", "imap", 0, "127.0.0.1", False, cast(Any, "off"), False)
    factory = build_imap_factory(cast(Any, context), spec)
    port = await serverFromString(reactor_, "tcp:0:interface=127.0.0.1").listen(factory)
    number = port.getHost().port

    def timed() -> dict[str, float]:
        client = imaplib.IMAP4("127.0.0.1", number, timeout=120)
        client.login("big", PASSWORD)
        out: dict[str, float] = {}
        start = time.perf_counter()
        client.select("INBOX")
        out["select"] = time.perf_counter() - start
        start = time.perf_counter()
        client.fetch("1:*", "(FLAGS)")
        out["fetch_flags"] = time.perf_counter() - start
        start = time.perf_counter()
        client.uid("SEARCH", "UNSEEN")
        out["uid_search_unseen"] = time.perf_counter() - start
        client.logout()
        return out

    loaders = [f"user{n}" for n in range(args.users)]
    for name in loaders:
        user_id = db.run_sync(users.add, name, stored.password_hash).id
        db.run_sync(fill, blobs, user_id, 20)
    jobs = [name for name in loaders for _ in range(args.clients)]

    def mixed() -> tuple[int, float]:
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            total = sum(pool.map(_client_session, [number] * len(jobs), jobs,
                                 [args.rounds] * len(jobs)))  # fmt: skip
        return total, time.perf_counter() - start

    if jobs:
        total, seconds = await threads.deferToThread(mixed)
        print(
            f"{'mixed load':>20}: {total / seconds:8.1f} commands/s "
            f"({total} commands, {len(jobs)} sessions x {args.rounds} rounds, {seconds:.1f} s)"
        )

    times = await threads.deferToThread(timed)
    for name, seconds in times.items():
        print(f"{name:>20}: {seconds * 1000:8.1f} ms  ({args.big} messages)")

    store = StoreMailStore(db, blobs, bus)
    auth = _StubAuth()
    auth.principal = Principal(idle_id, "idler", False, "idler@mail.example.test")
    many = args.idlers + 1  # one user, one address: lift the per-user/per-IP limits
    limits = IMAPLimits(max_logins_per_user=many, max_connections_per_ip=many)
    idle_factory = IMAPServerFactory(IMAPConfig(), store, auth, reactor_, limits)
    peer = IPv4Address("TCP", "192.0.2.9", 1000)
    kept = []
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(args.idlers):
        protocol = idle_factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"a LOGIN idler x\r\nb SELECT INBOX\r\nc IDLE\r\n")
        kept.append((protocol, transport))
    deadline = time.monotonic() + 300
    while any(not t.value().endswith(b"+ idling\r\n") for _, t in kept):
        if time.monotonic() > deadline:
            raise RuntimeError("sessions did not reach IDLE")
        await task.deferLater(reactor_, 0.05, lambda: None)
    for _, transport in kept:
        transport.clear()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per = (after - before) / args.idlers
    print(f"{'idle IDLE session':>20}: {per / 1024:8.1f} KiB each ({args.idlers} sessions)")
    await port.stopListening()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--idlers", type=int, default=1000)
    options = parser.parse_args()
    task.react(lambda r: Deferred.fromCoroutine(main(r, options)))
