"""Fakes for queue-runner tests: scripted SMTP hosts, a fixed MX table, queue helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from twisted.internet.task import Clock

from tests.support.stack import Stack
from vpop3d.app.dns import DNSFailure, MXHost, Override
from vpop3d.app.queue import QueueRunner
from vpop3d.core.reply import Reply
from vpop3d.proto.smtp.client import (
    ClientOptions,
    MessageResult,
    OutboundMessage,
    SMTPSessionError,
)
from vpop3d.store import queue as queue_repo

OK = Reply(250, "2.0.0", "ok")
START = 2_000_000_000.0  # the test clock's start
BODY = b"From: alice@example.test\r\nSubject: test\r\n\r\nHello.\r\n"

# A host's behaviour: "down" (refuses), or a function recipient -> reply.
Behaviour = str | Callable[[str], Reply]


@dataclass
class Sent:
    host: str
    port: int
    sender: str
    recipients: list[str]
    data: bytes
    options: ClientOptions


@dataclass
class FakeNet:
    """Scripted remote hosts keyed by name; records every transaction."""

    hosts: dict[str, Behaviour] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)

    async def connect(
        self,
        reactor: Any,
        address: str,
        port: int,
        options: ClientOptions,
        *,
        server_name: str | None = None,
    ) -> FakeSession:
        name = server_name or address
        self.connects.append(name)
        behaviour = self.hosts.get(name, "down")
        if behaviour == "down":
            raise SMTPSessionError(
                Reply(421, "4.4.1", f"cannot connect to {name}"), responded=False
            )
        if behaviour == "banner554":
            raise SMTPSessionError(Reply(554, "5.3.2", "go away"), responded=False)
        assert callable(behaviour)
        return FakeSession(self, name, port, options, behaviour)


class FakeSession:
    def __init__(
        self,
        net: FakeNet,
        name: str,
        port: int,
        options: ClientOptions,
        answer: Callable[[str], Reply],
    ) -> None:
        self.net = net
        self.server_name = name
        self.port = port
        self.options = options
        self.answer = answer

    async def send(self, message: OutboundMessage) -> MessageResult:
        replies = tuple((r.address, self.answer(r.address)) for r in message.recipients)
        accepted = [a for a, reply in replies if reply.is_success]
        if accepted:
            self.net.sent.append(
                Sent(
                    self.server_name,
                    self.port,
                    message.sender,
                    accepted,
                    message.data,
                    self.options,
                )
            )
        return MessageResult(replies)

    async def quit(self) -> None:
        return None


class FakeResolver:
    """MX answers from a table: domain -> host names, or a DNSFailure to raise."""

    def __init__(self, table: dict[str, Sequence[str] | DNSFailure]) -> None:
        self.table = table

    async def route(
        self, domain: str, overrides: Sequence[Override], *, retries: int = 0, size: int = 0
    ) -> list[MXHost]:
        found = self.table.get(domain)
        if found is None:
            raise DNSFailure(f"{domain}: no such domain", permanent=True)
        if isinstance(found, DNSFailure):
            raise found
        return [MXHost(name, 10 * i, (name,)) for i, name in enumerate(found)]


def accept_all(_address: str) -> Reply:
    return OK


def reply_for(code: int, enhanced: str, text: str) -> Callable[[str], Reply]:
    return lambda _address: Reply(code, enhanced, text)


def enqueue(
    stack: Stack,
    recipients: Sequence[str | queue_repo.QueuedRecipient],
    *,
    sender: str = "alice@example.test",
    kind: str = "internet",
    data: bytes = BODY,
    ret: str | None = None,
    now: float = START,
    auth_user: str | None = None,
) -> int:
    spool = stack.spool(data)
    spool.finish()
    rcpts = [
        r if isinstance(r, queue_repo.QueuedRecipient) else queue_repo.QueuedRecipient(r)
        for r in recipients
    ]

    def add(conn: Connection) -> int:
        blob_id = stack.blobs.commit(conn, spool, refs=1)
        return queue_repo.enqueue(
            conn,
            blob_id=blob_id,
            sender=sender,
            size=len(data),
            recipients=rcpts,
            kind=kind,
            ret=ret,
            now=now,
            auth_user=auth_user,
        )

    return stack.db.run_sync(add)


def lan_route(
    server: str, port: int, username: str | None = None, password: str | None = None
) -> str:
    return json.dumps(
        {"server": server, "port": port, "username": username, "password": password},
        sort_keys=True,
    )


def make_runner(
    stack: Stack, net: FakeNet, clock: Clock, resolver: FakeResolver | None = None
) -> QueueRunner:
    return QueueRunner(
        stack.db,
        stack.blobs,
        stack.settings,
        clock,
        hostname="mail.example.test",
        resolver=resolver,  # type: ignore[arg-type]  # duck-typed fake
        connect=net.connect,
    )


def states(stack: Stack, queue_id: int) -> dict[str, str]:
    entry = stack.db.run_sync(queue_repo.entry, queue_id)
    if entry is None:
        return {}
    return {r.address: r.state for r in entry.recipients}
