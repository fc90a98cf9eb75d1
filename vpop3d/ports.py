"""Seams between the wire protocols and the use cases below them.

Protocol packages (``vpop3d.proto.*``) depend only on these ``typing.Protocol``
types and on ``vpop3d.core``; ``vpop3d.app`` implements them over the store. Tests
swap in fakes that return fired Deferreds, so protocol tests stay synchronous.

Every method that may touch the database returns a ``Deferred``; none blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from twisted.internet.defer import Deferred

from vpop3d.core.sasl import Credentials, ScramKeys

# --------------------------------------------------------------------------- auth


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated local user, as protocols see it."""

    user_id: int
    username: str
    is_admin: bool
    address: str  # the user's default address, user@default-domain


@dataclass(frozen=True, slots=True)
class LoginContext:
    """Where a login attempt comes from; used for access rules, bans and logs."""

    service: str  # "smtp", "submission", "pop3", "imap", "web", "ldap", "status"
    peer_ip: str
    secure: bool  # the channel is TLS-protected


class Authenticator(Protocol):
    """Checks credentials from any SASL mechanism or plain USER/PASS/LOGIN."""

    def authenticate(self, credentials: Credentials, context: LoginContext) -> Deferred[Principal]:
        """Fire with the principal, or fail with ``core.reply.LoginFailed``."""

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        """SCRAM-SHA-256 stored keys for ``username`` (None: unknown user)."""

    def plaintext_equivalent_enabled(self) -> bool:
        """True when CRAM-MD5 and APOP may be offered (the admin stores such secrets)."""


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True, slots=True)
class SMTPContext:
    """What the delivery use case needs to know about one SMTP session."""

    listener: str  # "smtp", "submission", "smtps", or a named extra instance
    peer_ip: str
    peer_host: str  # HELO/EHLO argument
    secure: bool
    principal: Principal | None
    tls_description: str = ""  # e.g. "TLS1.3 TLS_AES_256_GCM_SHA384", for Received:
    esmtp: bool = True  # EHLO (True) or HELO session, for Received: "with ESMTP/SMTP"


@dataclass(frozen=True, slots=True)
class RecipientParams:
    """RFC 3461 parameters of one RCPT TO."""

    notify: tuple[str, ...] = ()
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class EnvelopeParams:
    """Parameters of MAIL FROM (RFC 1870, 1652, 3461, 6531)."""

    size: int | None = None
    body: str | None = None  # 7BIT, 8BITMIME, BINARYMIME
    ret: str | None = None  # FULL or HDRS
    envid: str | None = None
    smtputf8: bool = False


@dataclass(slots=True)
class Envelope:
    """A message's envelope as accepted so far in one SMTP transaction."""

    sender: str  # "" for the null reverse-path
    params: EnvelopeParams = field(default_factory=EnvelopeParams)
    recipients: list[tuple[str, RecipientParams]] = field(default_factory=list)


class Spool(Protocol):
    """A message body being received; nothing is visible until ``accept`` commits it."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def discard(self) -> None: ...


class DeliveryAgent(Protocol):
    """SMTP's view of policy, routing and delivery."""

    def check_sender(self, context: SMTPContext, envelope: Envelope) -> Deferred[None]:
        """Fail with ``ReplyError`` to refuse MAIL FROM."""

    def check_recipient(
        self, context: SMTPContext, envelope: Envelope, recipient: str
    ) -> Deferred[None]:
        """Fail with ``ReplyError`` (e.g. 550 Recipient not recognised, relay denied)."""

    def lookup(
        self, context: SMTPContext, argument: str, expand: bool
    ) -> Deferred[list[str] | None]:
        """VRFY (``expand`` False) or EXPN: the addresses ``argument`` names; [] when
        unknown; None when the admin has not allowed the commands for this client."""

    def open_spool(self) -> Spool:
        """A fresh body spool (a temp file under the data dir)."""

    def accept(self, context: SMTPContext, envelope: Envelope, spool: Spool) -> Deferred[str]:
        """Commit the message durably (fsync + DB commit) and fire with its queue id."""

    def max_message_size(self, context: SMTPContext) -> int:
        """Largest message this listener takes, in octets (0: no limit)."""


# --------------------------------------------------------------------------- POP3


@dataclass(frozen=True, slots=True)
class MaildropEntry:
    """One message of a POP3 snapshot."""

    message_id: int
    uidl: str
    size: int  # octets as sent by RETR (CRLF line ends, before dot-stuffing)


class Maildrop(Protocol):
    """A locked snapshot of a user's INBOX for one POP3 session."""

    @property
    def entries(self) -> Sequence[MaildropEntry]: ...

    def open_body(self, message_id: int) -> Deferred[BinaryIO]:
        """A readable stream of the stored message (CRLF line ends)."""

    def commit(self, deleted: Sequence[int]) -> Deferred[None]:
        """UPDATE state: remove (or hold) these messages, then release the lock."""

    def release(self) -> None:
        """Release the lock without changing anything (dropped connection, RSET+QUIT)."""


class MaildropAccess(Protocol):
    def open_maildrop(self, principal: Principal) -> Deferred[Maildrop]:
        """Lock and snapshot the INBOX; fail with ``core.reply.MailboxInUse``."""


# --------------------------------------------------------------------------- notifications


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """Something in a folder changed: new messages, flags, or expunges."""

    folder_id: int
    highest_modseq: int


Listener = Callable[[MailboxChanged], None]


class ChangeNotifier(Protocol):
    """In-process pub/sub of folder changes (IMAP EXISTS/EXPUNGE/FETCH, webmail)."""

    def subscribe(self, folder_id: int, listener: Listener) -> Callable[[], None]:
        """Register; the return value unsubscribes."""

    def publish(self, event: MailboxChanged) -> None: ...
