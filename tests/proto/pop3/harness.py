"""Fakes of the POP3 ports and a transcript driver over StringTransport."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from vpop3d.core import sasl
from vpop3d.core.reply import LoginFailed, MailboxInUse
from vpop3d.ports import LoginContext, Maildrop, MaildropEntry, Principal
from vpop3d.proto.pop3.server import (
    POP3ListenerConfig,
    POP3ServerFactory,
    POP3ServerProtocol,
)

APOP_TIMESTAMP = b"<1896.697170952@dbc.mtview.ca.us>"  # RFC 1939 §7 example
DOMAIN = "example.test"


def crlf(body: bytes) -> bytes:
    """The body with CRLF line ends, as RETR sends it before dot-stuffing."""
    return body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass
class FakeAuthenticator:
    """Users by name with cleartext passwords; ``user@example.test`` resolves too."""

    passwords: dict[str, str] = field(default_factory=lambda: {"fred": "letmein"})
    plaintext_equivalent: bool = False
    contexts: list[LoginContext] = field(default_factory=list)
    credentials: list[sasl.Credentials] = field(default_factory=list)
    pending: list[Deferred[Principal]] | None = None  # hand out unfired Deferreds
    failure_code: str = "AUTH"

    def _resolve(self, name: str) -> str | None:
        local, _, domain = name.partition("@")
        if domain and domain != DOMAIN:
            return None
        return local if local in self.passwords else None

    def principal(self, username: str) -> Principal:
        user_id = sorted(self.passwords).index(username) + 1
        return Principal(user_id, username, False, f"{username}@{DOMAIN}")

    def authenticate(
        self, credentials: sasl.Credentials, context: LoginContext
    ) -> Deferred[Principal]:
        self.contexts.append(context)
        self.credentials.append(credentials)
        if self.pending is not None:
            deferred: Deferred[Principal] = Deferred()
            self.pending.append(deferred)
            return deferred
        username = self._resolve(credentials.username)
        if username is not None:
            secret = self.passwords[username]
            ok = True
            if isinstance(credentials, sasl.PasswordCredentials):
                ok = credentials.password == secret
            elif isinstance(credentials, sasl.ChallengeCredentials):
                ok = credentials.verify(secret)
            if ok:
                return succeed(self.principal(username))
        return fail(LoginFailed(response_code=self.failure_code))

    def scram_keys(self, username: str) -> Deferred[sasl.ScramKeys | None]:
        resolved = self._resolve(username)
        if resolved is None:
            return succeed(None)
        salt = b"0123456789abcdef"
        return succeed(sasl.derive_scram_keys(self.passwords[resolved], salt))

    def plaintext_equivalent_enabled(self) -> bool:
        return self.plaintext_equivalent


@dataclass
class FakeMaildrop:
    """A locked snapshot over :class:`FakeMaildrops`; records what it was told."""

    owner: FakeMaildrops
    username: str
    snapshot: list[tuple[int, str, bytes]]
    released: bool = False
    committed: list[int] | None = None
    commit_error: Exception | None = None

    @property
    def entries(self) -> Sequence[MaildropEntry]:
        return [
            MaildropEntry(message_id, uidl, len(crlf(body)))
            for message_id, uidl, body in self.snapshot
        ]

    def open_body(self, message_id: int) -> Deferred[BinaryIO]:
        for number, _, body in self.snapshot:
            if number == message_id:
                stream = io.BytesIO(body)
                self.owner.opened.append(stream)
                if self.owner.body_waiters is not None:
                    waiter: Deferred[BinaryIO] = Deferred()
                    self.owner.body_waiters.append((waiter, stream))
                    return waiter
                return succeed(stream)
        return fail(KeyError(message_id))

    def commit(self, deleted: Sequence[int]) -> Deferred[None]:
        if self.commit_error is not None:
            return fail(self.commit_error)
        self.committed = list(deleted)
        self.owner.remove(self.username, deleted)
        self._unlock()
        return succeed(None)

    def release(self) -> None:
        self.released = True
        self._unlock()

    def _unlock(self) -> None:
        self.owner.locked.discard(self.username)


@dataclass
class FakeMaildrops:
    """Mailboxes by username, each a list of (message_id, uidl, body)."""

    boxes: dict[str, list[tuple[int, str, bytes]]] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)
    opened: list[io.BytesIO] = field(default_factory=list)
    drops: list[FakeMaildrop] = field(default_factory=list)
    body_waiters: list[tuple[Deferred[BinaryIO], io.BytesIO]] | None = None
    next_id: int = 1

    def add(self, username: str, body: bytes, uidl: str | None = None) -> int:
        message_id = self.next_id
        self.next_id += 1
        box = self.boxes.setdefault(username, [])
        box.append((message_id, uidl or f"anh-{637721 + message_id}", body))
        return message_id

    def remove(self, username: str, message_ids: Sequence[int]) -> None:
        gone = set(message_ids)
        self.boxes[username] = [
            item for item in self.boxes.get(username, []) if item[0] not in gone
        ]

    def open_maildrop(self, principal: Principal) -> Deferred[Maildrop]:
        if principal.username in self.locked:
            return fail(MailboxInUse())
        self.locked.add(principal.username)
        drop = FakeMaildrop(self, principal.username, list(self.boxes.get(principal.username, [])))
        self.drops.append(drop)
        opened: Deferred[Maildrop] = succeed(drop)
        return opened


class TLSStringTransport(StringTransport):
    """A StringTransport that records STLS instead of doing a handshake."""

    tls_context: object | None = None
    buffered_at_tls: bytes = b""

    def startTLS(self, context: object) -> None:  # noqa: N802 - Twisted's name
        self.tls_context = context


@dataclass
class Transcript:
    """Drives one server connection and compares the octets it writes."""

    factory: POP3ServerFactory
    peer: str = "192.0.2.7"
    transport_class: type[TLSStringTransport] = TLSStringTransport
    transport: TLSStringTransport = field(init=False)
    protocol: POP3ServerProtocol = field(init=False)

    def __post_init__(self) -> None:
        address = IPv4Address("TCP", self.peer, 4242)
        self.protocol = self.factory.buildProtocol(address)
        self.transport = self.transport_class(peerAddress=address)
        self.protocol.makeConnection(self.transport)

    def greeting(self) -> str:
        return self.take()

    def take(self) -> str:
        """Everything written since the last call, decoded."""
        value = bytes(self.transport.value()).decode("utf-8")
        self.transport.clear()
        return value

    def send(self, *lines: str | bytes) -> str:
        """Send lines (CRLF added) in one segment; return the server's output."""
        self.take()
        data = b"".join(
            (line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n" for line in lines
        )
        self.protocol.dataReceived(data)
        return self.take()

    def expect(self, line: str | bytes, *reply: str) -> None:
        """Send one line and assert the exact reply lines."""
        got = self.send(line)
        assert got == "".join(f"{part}\r\n" for part in reply), got

    def login(self, user: str = "fred", password: str = "letmein") -> str:
        self.send(f"USER {user}")
        return self.send(f"PASS {password}")

    def is_closed(self) -> bool:
        return bool(self.transport.disconnecting)


def make_factory(
    authenticator: FakeAuthenticator | None = None,
    maildrops: FakeMaildrops | None = None,
    *,
    clock: Clock | None = None,
    tls_context: object | None = None,
    **config: Any,
) -> POP3ServerFactory:
    return POP3ServerFactory(
        POP3ListenerConfig(**config),
        authenticator or FakeAuthenticator(),
        maildrops or FakeMaildrops(),
        clock or Clock(),
        tls_context,
        make_challenge=lambda hostname: APOP_TIMESTAMP,
    )


def sample_maildrops() -> FakeMaildrops:
    """Fred's INBOX with three small messages."""
    drops = FakeMaildrops()
    drops.add("fred", b"Subject: one\r\n\r\nfirst body\r\n")
    drops.add("fred", b"Subject: two\r\n\r\n.dotted line\r\nmore\r\n")
    drops.add("fred", b"Subject: three\r\n\r\nthird\r\n")
    return drops
