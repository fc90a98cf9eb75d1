"""What every server is seeded with, and the shape shared by the peer launchers."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PASSWORD = "benchpass1"
DOMAIN = "example.test"


@dataclass(frozen=True)
class Plan:
    pop_users: tuple[str, ...]  # each with corpus.mailbox()
    imap_users: tuple[str, ...]  # each with corpus.mailbox()
    sink_users: tuple[str, ...]  # SMTP recipients, empty
    big_count: int  # messages in user "big"'s INBOX (a third unseen)
    idle_messages: int = 10  # user "idle"'s INBOX
    web_users: int = 10_000
    outbound: int = 1000  # queued 10 KB messages sent to the local sink

    @property
    def all_users(self) -> tuple[str, ...]:
        return (*self.pop_users, *self.imap_users, *self.sink_users, "big", "idle")


class Server(Protocol):
    name: str
    serves: frozenset[str]  # of "smtp", "pop3", "imap", "web"
    ports: dict[str, int]

    def setup(self, plan: Plan) -> None: ...
    # "outbound" servers also have: sink_port: int, outbound_prepare(plan): queue
    # plan.outbound messages held back, outbound_release(): let the queue go.
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def pid(self) -> int: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def maildir_name(number: int, size: int, seen: bool) -> str:
    """A maildir ``cur/`` file name (size hint S= as Dovecot reads it)."""
    return f"1700000000.M{number}P1.bench,S={size}:2,{'S' if seen else ''}"


def make_maildir(path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
