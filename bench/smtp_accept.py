"""Accepted SMTP messages per second: 10 KB messages over 10 concurrent connections.

    python bench/smtp_accept.py [--messages 1000] [--connections 10] [--size 10240]

The server side is vpop3d's SMTP listener on 127.0.0.1 (ephemeral port) in this
process, built by ``vpop3d.wiring_smtp`` over a fresh SQLite store in a temp
directory: every message is routed, fsynced and committed into user fred's INBOX
before its 250, exactly as in production. The clients are stdlib smtplib in
separate processes, each keeping one connection open and sending its share of
messages back to back. ``--wire-only`` swaps in an in-memory DeliveryAgent to
measure the protocol alone. The rate printed is messages / (last client finish -
first client start).
"""

from __future__ import annotations

import argparse
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, cast

from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import Credentials, ScramKeys
from vpop3d.ports import Envelope, LoginContext, Principal, SMTPContext, Spool
from vpop3d.proto.smtp.server import SMTPListenerConfig, SMTPServerFactory

HOSTNAME = "mail.bench.test"  # first run makes the local domain bench.test


class MemorySpool:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self._size += len(data)

    def discard(self) -> None:
        self.parts.clear()


class BenchDelivery:
    """Accepts local recipients; counts accepted messages."""

    def __init__(self) -> None:
        self.accepted = 0

    def check_sender(self, context: SMTPContext, envelope: Envelope) -> Deferred[None]:
        return succeed(None)

    def lookup(
        self, context: SMTPContext, argument: str, expand: bool
    ) -> Deferred[list[str] | None]:
        return succeed(None)

    def check_recipient(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> Deferred[None]:
        return succeed(None)

    def open_spool(self) -> Spool:
        return MemorySpool()

    def accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> Deferred[str]:
        spool.discard()
        self.accepted += 1
        return succeed(f"B{self.accepted}")

    def max_message_size(self, context: SMTPContext) -> int:
        return 50_000_000


class NoAuth:
    def authenticate(self, credentials: Credentials, context: LoginContext) -> Deferred[Principal]:
        raise LoginFailed()

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        return succeed(None)

    def plaintext_equivalent_enabled(self) -> bool:
        return False


def message(size: int) -> bytes:
    header = b"From: bench@remote.test\r\nTo: fred@bench.test\r\nSubject: bench\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(header)) // len(line) + 1)
    return (header + body)[:size]


def client(port: int, count: int, size: int) -> tuple[float, float, int]:
    data = message(size)
    start = time.time()
    sent = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("bench.test")
        for _ in range(count):
            smtp.sendmail("bench@remote.test", ["fred@bench.test"], data)
            sent += 1
    return start, time.time(), sent


def run_clients(
    port: int, messages: int, connections: int, size: int
) -> list[tuple[float, float, int]]:
    shares = [
        messages // connections + (1 if n < messages % connections else 0)
        for n in range(connections)
    ]
    with ProcessPoolExecutor(connections) as pool:
        futures = [pool.submit(client, port, share, size) for share in shares]
        return [future.result() for future in futures]


def real_factory(data_dir: Path) -> tuple[SMTPServerFactory, Callable[[], int], Callable[[], None]]:
    """The production SMTP factory over a fresh store; (factory, inbox count, close)."""
    from vpop3d.app import accounts
    from vpop3d.app.auth import AccountAuthenticator
    from vpop3d.app.bootstrap import first_run
    from vpop3d.app.notify import ChangeBus
    from vpop3d.app.settings import Settings
    from vpop3d.config import ListenerSpec, defaults
    from vpop3d.context import ServerContext
    from vpop3d.store import folders, messages, migrate, users
    from vpop3d.store.blobs import make_blob_store
    from vpop3d.store.db import Database
    from vpop3d.wiring_smtp import build_smtp_factory

    database = Database(f"sqlite:///{data_dir / 'bench.db'}", cast(Any, reactor))
    migrate.ensure(database.engine, auto_migrate=True)
    database.run_sync(first_run, HOSTNAME)
    database.run_sync(accounts.add_user, "fred", "bench-secret")
    database.start()
    settings = Settings(database)
    settings.load_sync()
    context = ServerContext(
        config=defaults(data_dir, HOSTNAME),
        reactor=reactor,
        database=database,
        settings=settings,
        blob_store=make_blob_store("file", data_dir),
        bus=ChangeBus(),
        authenticator=AccountAuthenticator(database, settings),
        tls=None,
    )
    spec = ListenerSpec(
        name="smtp",
        protocol="smtp",
        role="smtp",
        port=0,
        interface="127.0.0.1",
        implicit_tls=False,
        starttls="off",
        require_auth=False,
    )
    factory = build_smtp_factory(cast(Any, context), spec)

    def count(conn: Any) -> int:
        user = users.by_name(conn, "fred")
        assert user is not None
        return len(messages.in_folder(conn, folders.inbox(conn, user.id).id))

    def close() -> None:
        database.stop()

    return cast(SMTPServerFactory, factory), lambda: database.read_sync(count), close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--wire-only", action="store_true", help="in-memory DeliveryAgent")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vpop3d-bench-") as tmp:
        if args.wire_only:
            delivery = BenchDelivery()
            factory = SMTPServerFactory(
                SMTPListenerConfig(name="smtp", hostname=HOSTNAME),
                authenticator=NoAuth(),
                delivery=delivery,
                clock=reactor,
            )
            stored, close = (lambda: delivery.accepted), (lambda: None)
        else:
            factory, stored, close = real_factory(Path(tmp))
        results: list[tuple[float, float, int]] = []

        def started(port: object) -> None:
            number = port.getHost().port  # type: ignore[attr-defined]
            work = threads.deferToThread(
                run_clients, number, args.messages, args.connections, args.size
            )
            work.addCallback(results.extend)
            work.addErrback(lambda failure: print(failure.getTraceback(), file=sys.stderr))
            work.addBoth(lambda _: reactor.stop())

        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        endpoint.listen(factory).addCallback(started)
        reactor.run()
        in_mailbox = stored()
        close()
    if not results:
        raise SystemExit("benchmark failed")
    sent = sum(count for _, _, count in results)
    elapsed = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    where = "in memory (wire only)" if args.wire_only else "in fred's INBOX"
    print(
        f"{sent} messages of {args.size} bytes over {args.connections} connections "
        f"in {elapsed:.2f}s: {sent / elapsed:.0f} accepted messages/s "
        f"({in_mailbox} stored {where})"
    )


if __name__ == "__main__":
    main()
