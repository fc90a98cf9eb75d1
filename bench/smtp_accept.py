"""Accepted SMTP messages per second: 10 KB messages over 10 concurrent connections.

    python bench/smtp_accept.py [--messages 1000] [--connections 10] [--size 10240]

The server side is vpop3d's real SMTP listener on 127.0.0.1 (ephemeral port) in this
process; the clients are stdlib smtplib in separate processes, each keeping one
connection open and sending its share of messages back to back. By default the
messages go through a throw-away in-memory DeliveryAgent (the wire side alone);
``--spool-dir`` writes and fsyncs each body to a file instead, to include disk cost.
The rate printed is messages / (last client finish - first client start).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import Credentials, ScramKeys
from vpop3d.ports import Envelope, LoginContext, Principal, SMTPContext, Spool
from vpop3d.proto.smtp.server import SMTPListenerConfig, SMTPServerFactory

LOCAL = {"fred@a.test", "kate@a.test"}


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


class FileSpool(MemorySpool):
    def __init__(self, directory: str) -> None:
        super().__init__()
        handle, self.path = tempfile.mkstemp(dir=directory)
        self.file = os.fdopen(handle, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._size += len(data)

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        Path(self.path).unlink(missing_ok=True)


class BenchDelivery:
    """Accepts local recipients; counts accepted messages."""

    def __init__(self, spool_dir: str | None) -> None:
        self.spool_dir = spool_dir
        self.accepted = 0

    def check_sender(self, context: SMTPContext, envelope: Envelope) -> Deferred[None]:
        return succeed(None)

    def check_recipient(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> Deferred[None]:
        return succeed(None)

    def open_spool(self) -> Spool:
        return FileSpool(self.spool_dir) if self.spool_dir else MemorySpool()

    def accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> Deferred[str]:
        if isinstance(spool, FileSpool):
            spool.finish()
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
    header = b"From: bench@remote.test\r\nTo: fred@a.test\r\nSubject: bench\r\n\r\n"
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
            smtp.sendmail("bench@remote.test", ["fred@a.test"], data)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--spool-dir", default=None, help="fsync each body to a file here")
    args = parser.parse_args()

    delivery = BenchDelivery(args.spool_dir)
    factory = SMTPServerFactory(
        SMTPListenerConfig(name="smtp", hostname="bench.test", max_line_length=0),
        authenticator=NoAuth(),
        delivery=delivery,
        clock=reactor,
    )
    results: list[tuple[float, float, int]] = []

    def started(port: object) -> None:
        number = port.getHost().port  # type: ignore[attr-defined]
        work = threads.deferToThread(
            run_clients, number, args.messages, args.connections, args.size
        )
        work.addCallback(results.extend)
        work.addErrback(lambda failure: print(failure.getTraceback(), file=sys.stderr))
        work.addBoth(lambda _: reactor.stop())

    TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory).addCallback(started)
    reactor.run()
    if not results:
        raise SystemExit("benchmark failed")
    sent = sum(count for _, _, count in results)
    elapsed = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    print(
        f"{sent} messages of {args.size} bytes over {args.connections} connections "
        f"in {elapsed:.2f}s: {sent / elapsed:.0f} accepted messages/s "
        f"(server accepted {delivery.accepted})"
    )


if __name__ == "__main__":
    main()
