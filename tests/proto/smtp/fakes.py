"""Test doubles for the SMTP protocol tests: ports, a TLS-capable transport, transcripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from vpop3d.core import sasl
from vpop3d.core.reply import SMTP_RECIPIENT_UNKNOWN, SMTP_RELAY_DENIED, LoginFailed, ReplyError
from vpop3d.ports import Envelope, LoginContext, Principal, SMTPContext, Spool
from vpop3d.proto.smtp.server import SMTPListenerConfig, SMTPServerFactory, TLSCreator

CRLF = b"\r\n"


class FakeSpool:
    """An in-memory spool that records what was written and whether it was dropped."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.discarded = False

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, data: bytes) -> None:
        assert not self.discarded, "write after discard"
        self.data += data

    def discard(self) -> None:
        self.discarded = True


@dataclass
class Accepted:
    context: SMTPContext
    envelope: Envelope
    body: bytes


@dataclass
class FakeDelivery:
    """Local users a.test; everything else is relay, refused unless authenticated."""

    local: set[str] = field(default_factory=lambda: {"fred@a.test", "kate@a.test"})
    max_size: int = 10_000
    hold: bool = False  # hand out unfired Deferreds (for ordering tests)
    held: list[Deferred[None]] = field(default_factory=list)
    spools: list[FakeSpool] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    queue_ids: int = 0
    broken: bool = False  # check_recipient raises a bug
    vrfy_enabled: bool = False  # the admin's "Enable VRFY and EXPN" (seed-4 §7.8)

    def check_sender(self, context: SMTPContext, envelope: Envelope) -> Deferred[None]:
        self.senders.append(envelope.sender)
        if envelope.sender == "spammer@bad.test":
            return fail(ReplyError.of(550, "5.7.1", "Sender Prohibited (test)"))
        return self._result(None)

    def lookup(
        self, context: SMTPContext, argument: str, expand: bool
    ) -> Deferred[list[str] | None]:
        if not self.vrfy_enabled:
            return succeed(None)
        address = argument.strip("<>").lower()
        if address == "team@a.test" and expand:
            return succeed(["fred@a.test", "kate@a.test"])
        return succeed([address] if address in self.local else [])

    def check_recipient(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> Deferred[None]:
        if self.broken:
            raise RuntimeError("routing bug")
        if recipient.lower() in self.local:
            return self._result(None)
        if recipient.endswith("@a.test"):
            return fail(ReplyError(SMTP_RECIPIENT_UNKNOWN))
        if context.principal is None:
            return fail(ReplyError(SMTP_RELAY_DENIED))
        return self._result(None)

    def _result(self, value: None) -> Deferred[None]:
        if self.hold:
            deferred: Deferred[None] = Deferred()
            self.held.append(deferred)
            return deferred
        return succeed(value)

    def open_spool(self) -> FakeSpool:
        spool = FakeSpool()
        self.spools.append(spool)
        return spool

    def accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> Deferred[str]:
        assert isinstance(spool, FakeSpool)
        self.queue_ids += 1
        self.accepted.append(Accepted(context, envelope, bytes(spool.data)))
        return succeed(f"Q{self.queue_ids:04d}")

    def max_message_size(self, context: SMTPContext) -> int:
        return self.max_size


PASSWORDS = {"fred": "secret"}
SCRAM_SALT = b"0123456789abcdef"


@dataclass
class FakeAuthenticator:
    """Users and passwords from PASSWORDS; CRAM-MD5 allowed when cram is True."""

    cram: bool = True
    contexts: list[LoginContext] = field(default_factory=list)

    def authenticate(
        self, credentials: sasl.Credentials, context: LoginContext
    ) -> Deferred[Principal]:
        self.contexts.append(context)
        username = credentials.username
        password = PASSWORDS.get(username)
        ok = False
        if password is not None:
            if isinstance(credentials, sasl.PasswordCredentials):
                ok = credentials.password == password
            elif isinstance(credentials, sasl.ChallengeCredentials):
                ok = credentials.verify(password)
            else:
                ok = True  # ScramVerified: the mechanism checked the proof
        if not ok:
            return fail(LoginFailed())
        return succeed(Principal(1, username, False, f"{username}@a.test"))

    def scram_keys(self, username: str) -> Deferred[sasl.ScramKeys | None]:
        password = PASSWORDS.get(username)
        if password is None:
            return succeed(None)
        return succeed(sasl.derive_scram_keys(password, SCRAM_SALT, 4096))

    def plaintext_equivalent_enabled(self) -> bool:
        return self.cram


@implementer(ITLSTransport)
class TLSStringTransport(StringTransport):  # type: ignore[misc]  # TCP knobs unused
    """A StringTransport that records STARTTLS instead of doing a handshake."""

    tls_started = False

    def startTLS(self, context_factory: object) -> None:  # noqa: N802 - Twisted API
        self.tls_started = True


class Transcript:
    """Drive one SMTPServerProtocol over a StringTransport, line by line."""

    def __init__(
        self,
        factory: SMTPServerFactory,
        peer: str = "192.0.2.7",
        transport: StringTransport | None = None,
    ) -> None:
        self.factory = factory
        address = IPv4Address("TCP", peer, 4242)
        self.transport = transport or StringTransport(peerAddress=address)
        self.protocol = factory.buildProtocol(IPv4Address("TCP", peer, 4242))
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> list[str]:
        """Lines written since the last call, without CRLF."""
        data: bytes = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        assert data.endswith(CRLF), data
        return data[:-2].decode("utf-8").split("\r\n")

    def raw(self, data: bytes) -> list[str]:
        self.protocol.dataReceived(data)
        return self.take()

    def send(self, line: str | bytes) -> list[str]:
        data = line.encode("utf-8") if isinstance(line, str) else line
        return self.raw(data + CRLF)

    def last(self, line: str | bytes) -> str:
        """The final reply line to ``line``."""
        replies = self.send(line)
        assert replies, f"no reply to {line!r}"
        return replies[-1]

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


def make_factory(
    delivery: FakeDelivery | None = None,
    authenticator: FakeAuthenticator | None = None,
    clock: Clock | None = None,
    tls: TLSCreator | None = None,
    **config: Any,
) -> SMTPServerFactory:
    settings = SMTPListenerConfig(hostname="mail.a.test", **config)
    return SMTPServerFactory(
        settings,
        authenticator=authenticator or FakeAuthenticator(),
        delivery=delivery or FakeDelivery(),
        clock=clock or Clock(),
        tls=tls,
    )
