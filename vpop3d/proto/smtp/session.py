"""The SMTP server session: a pure state machine from command lines to actions.

``SMTPSession`` never does I/O. Each input (a line, the result of a port call, the
end of a message body) returns a list of actions for the adapter to perform in
order: send a reply, call a ``DeliveryAgent``/``Authenticator`` method and report
back, switch to reading a body, start TLS, close. Which commands a state accepts is
the explicit ``ALLOWED`` table; handlers are looked up by command type.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from vpop3d.core import sasl
from vpop3d.core.reply import LoginFailed, Reply
from vpop3d.ports import (
    Envelope,
    EnvelopeParams,
    LoginContext,
    Principal,
    RecipientParams,
    SMTPContext,
)
from vpop3d.proto.smtp import grammar
from vpop3d.proto.smtp.grammar import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Etrn,
    Expn,
    Helo,
    Help,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Rset,
    SMTPSyntaxError,
    StartTLS,
    Unknown,
    Vrfy,
)

__all__ = [
    "ALLOWED",
    "Action",
    "Authenticate",
    "BodyFault",
    "CheckRecipient",
    "CheckSender",
    "Close",
    "Deliver",
    "FetchScramKeys",
    "Lookup",
    "ReceiveChunk",
    "ReceiveData",
    "SMTPListenerConfig",
    "SMTPSession",
    "SMTPState",
    "Send",
    "StartTLSNow",
]

StartTLSMode = Literal["off", "optional", "required"]


@dataclass(frozen=True, slots=True)
class SMTPListenerConfig:
    """Settings of one SMTP listener (MTA on 25, submission on 587, SMTPS on 465)."""

    name: str = "smtp"  # also the LoginContext service and SMTPContext listener
    hostname: str = "localhost"
    greeting: str = "ESMTP server ready"  # manual L1546: 220 <host> ESMTP server ready
    implicit_tls: bool = False
    starttls: StartTLSMode = "optional"
    require_auth: bool = False
    max_recipients: int = 100  # RFC 5321 §4.5.3.1.8: at least 100; 0 = no limit
    max_errors: int = 20
    max_auth_failures: int = 3  # manual L6884
    command_timeout: float = 300.0  # RFC 5321 §4.5.3.2.7: 5 minutes
    data_timeout: float = 600.0  # RFC 5321 §4.5.3.2.6 asks the client to wait 10
    max_connections: int = 0  # 0 = no limit
    max_connections_per_ip: int = 0
    allow_plaintext_auth_without_tls: bool = False  # manual L6379 (inverted)
    dsn: bool = True  # manual L6903 "Disable DSN support" unchecked
    max_line_length: int = 1000  # DATA text lines incl. CRLF (RFC 5321 §4.5.3.1.6); 0 = none
    max_messages: int = 0  # mail transactions per session (seed-4 §7.5); 0 = no limit
    refuse_helo: tuple[str, ...] = ()  # HELO/EHLO texts refused (manual L6901)


class SMTPState(enum.Enum):
    GREETING = "greeting"  # connected, no HELO/EHLO yet
    READY = "ready"  # greeted, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    CHUNKING = "chunking"  # BDAT chunks (not LAST) received
    DATA = "data"  # reading or delivering a body
    AUTH = "auth"  # inside a SASL exchange
    CLOSED = "closed"


class BodyFault(enum.Enum):
    """Why a received body is refused after its end."""

    TOO_BIG = "too big"
    BARE_LINE_ENDING = "bare CR or LF"
    LINE_TOO_LONG = "line too long"
    TEMPORARY = "spool failure"  # our side could not store it: 451, not 5xx


# ------------------------------------------------------------------ actions


@dataclass(frozen=True, slots=True)
class Send:
    reply: Reply


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection after what was sent."""


@dataclass(frozen=True, slots=True)
class StartTLSNow:
    """Drop buffered input and start the TLS handshake (RFC 3207 §4)."""


@dataclass(frozen=True, slots=True)
class CheckSender:
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class CheckRecipient:
    envelope: Envelope
    recipient: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """VRFY (``expand`` False) or EXPN: ask the delivery agent, then ``looked_up``."""

    argument: str
    expand: bool


@dataclass(frozen=True, slots=True)
class ReceiveData:
    """Read a dot-terminated body, then call ``body_received``."""


@dataclass(frozen=True, slots=True)
class ReceiveChunk:
    """Read exactly ``size`` octets (kept only when ``keep``), then ``chunk_received``.

    ``first``: the transaction's first chunk, so a new body starts here.
    """

    size: int
    keep: bool
    first: bool = False


@dataclass(frozen=True, slots=True)
class Deliver:
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Authenticate:
    credentials: sasl.Credentials
    context: LoginContext


@dataclass(frozen=True, slots=True)
class FetchScramKeys:
    username: str


Action = (
    Send
    | Close
    | StartTLSNow
    | CheckSender
    | CheckRecipient
    | Lookup
    | ReceiveData
    | ReceiveChunk
    | Deliver
    | Authenticate
    | FetchScramKeys
)

# ------------------------------------------------------------------ replies


def _r(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code, enhanced, text)


OK = _r(250, "2.0.0", "OK")
SENDER_OK = _r(250, "2.1.0", "OK")  # manual L1555: 250 OK
RECIPIENT_OK = _r(250, "2.1.5", "OK")
START_DATA = _r(354, "", "End data with <CR><LF>.<CR><LF>")  # manual L1563
BYE = _r(221, "2.0.0", "Bye, see you later")  # manual L1575
CANNOT_VRFY = _r(252, "2.5.2", "Cannot VRFY user")  # seed-4 §7.8 proposal
LOOKUP_UNKNOWN = _r(550, "5.1.1", "Recipient not recognised")
VRFY_SYNTAX = _r(501, "5.5.4", "VRFY and EXPN need an address")
NO_EXPN = _r(502, "5.5.1", "EXPN not available")
NOT_IMPLEMENTED = _r(502, "5.5.1", "Command not implemented")
UNRECOGNIZED = _r(500, "5.5.2", "Command unrecognized")
BAD_SEQUENCE = _r(503, "5.5.1", "Bad sequence of commands")
HELO_FIRST = _r(503, "5.5.1", "Send HELO/EHLO first")
EHLO_FIRST = _r(503, "5.5.1", "Send EHLO first")
NEED_MAIL = _r(503, "5.5.1", "Need MAIL command")
NEED_RCPT = _r(503, "5.5.1", "No valid recipients")
NESTED_MAIL = _r(503, "5.5.1", "Sender already specified")
CHUNKING_ONLY = _r(503, "5.5.1", "Only BDAT, RSET, NOOP or QUIT during BDAT")
TOO_MANY_MESSAGES = _r(451, "4.7.1", "Too many messages in this session")  # seed-4 §7.5
ACCESS_DENIED = _r(554, "5.7.1", "Access denied")  # seed-4 §7.9 proposal
TOO_MANY_RECIPIENTS = _r(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
TOO_BIG = _r(552, "5.3.4", "Message size exceeds fixed maximum message size")
BARE_LINE_ENDING = _r(
    554, "5.6.0", "Message refused: bare CR or LF in message data (RFC 5321 §2.3.8)"
)
DATA_LINE_TOO_LONG = _r(554, "5.6.0", "Message refused: line too long")
UNSUPPORTED_PARAMETER = grammar.UNKNOWN_PARAMETER
TLS_READY = _r(220, "2.0.0", "Ready to start TLS")  # RFC 3207 §4
TLS_ACTIVE = _r(503, "5.5.1", "TLS already active")
TLS_UNAVAILABLE = _r(502, "5.5.1", "STARTTLS not available")
TLS_REQUIRED = _r(530, "5.7.0", "Must issue a STARTTLS command first")  # RFC 3207 §4
AUTH_REQUIRED = _r(530, "5.7.0", "Authentication required")  # RFC 4954 §6
AUTH_OK = _r(235, "2.7.0", "Authentication successful")
AUTH_INVALID = _r(535, "5.7.8", "Authentication credentials invalid")
AUTH_TEMPORARY = _r(454, "4.7.0", "Temporary authentication failure")
AUTH_UNKNOWN_MECHANISM = _r(504, "5.5.4", "Unrecognized authentication type")
AUTH_ENCRYPTION_REQUIRED = _r(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
AUTH_ALREADY = _r(503, "5.5.1", "Already authenticated")
AUTH_IN_TRANSACTION = _r(503, "5.5.1", "AUTH not permitted during a mail transaction")
AUTH_CANCELLED = _r(501, "5.7.0", "Authentication cancelled")
AUTH_BAD_BASE64 = _r(501, "5.5.2", "Cannot decode base64 response")
TEMP_FAILURE = _r(451, "4.3.0", "Temporary server error, please try again later")
HELP_TEXT = _r(
    214,
    "2.0.0",
    "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP"
    " STARTTLS AUTH\nSee RFC 5321 for details",
)


def too_many_errors(host: str) -> Reply:
    return _r(421, "4.7.0", f"{host} Too many errors, closing connection")


def too_many_auth_failures(host: str) -> Reply:
    return _r(421, "4.7.0", f"{host} Too many failed authentication attempts")


def timeout(host: str) -> Reply:
    return _r(421, "4.4.2", f"{host} Error: timeout exceeded")


def too_many_connections(host: str) -> Reply:
    return _r(421, "4.7.0", f"{host} Too many connections, try again later")


def queued(queue_id: str) -> Reply:
    return _r(250, "2.0.0", f"OK - queued as {queue_id}")  # manual L1571


# ------------------------------------------------------------------ states

_ANYTIME: frozenset[type[Command]] = frozenset(
    {Helo, Ehlo, Noop, Quit, Rset, Vrfy, Expn, Help, Unknown}
)
ALLOWED: dict[SMTPState, frozenset[type[Command]]] = {
    SMTPState.GREETING: _ANYTIME | {StartTLS, Etrn},
    SMTPState.READY: _ANYTIME | {MailFrom, StartTLS, Auth, Etrn},
    SMTPState.MAIL: _ANYTIME | {RcptTo},
    SMTPState.RCPT: _ANYTIME | {RcptTo, Data, Bdat},
    SMTPState.CHUNKING: frozenset({Bdat, Noop, Quit, Rset, Unknown}),
    SMTPState.DATA: frozenset(),
    SMTPState.AUTH: frozenset(),
    SMTPState.CLOSED: frozenset(),
}

_TRANSACTION = frozenset({SMTPState.MAIL, SMTPState.RCPT, SMTPState.CHUNKING})


class _Pending(enum.Enum):
    NONE = "none"
    SENDER = "sender"
    RECIPIENT = "recipient"
    DELIVERY = "delivery"
    AUTH = "auth"
    KEYS = "keys"
    LOOKUP = "lookup"


Handler = Callable[["SMTPSession", Command], list[Action]]
_C = TypeVar("_C", MailFrom, RcptTo, Bdat, Auth, Vrfy, Expn)


def _cast(command: Command, kind: type[_C]) -> _C:
    """Narrow a command the dispatch table routed here by its type."""
    if not isinstance(command, kind):  # pragma: no cover - the table is keyed by type
        raise TypeError(command)
    return command


class SMTPSession:
    """One SMTP server conversation, from greeting to close."""

    def __init__(
        self,
        config: SMTPListenerConfig,
        *,
        peer_ip: str,
        tls_available: bool,
        max_message_size: Callable[[SMTPContext], int],
        plaintext_equivalent: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.peer_ip = peer_ip
        self._tls_available = tls_available
        self._max_message_size = max_message_size
        self._plaintext_equivalent = plaintext_equivalent
        self.state = SMTPState.GREETING
        self.secure = config.implicit_tls
        self.tls_description = ""
        self.helo = ""
        self.esmtp = False
        self.principal: Principal | None = None
        self.envelope: Envelope | None = None
        self.errors = 0
        self.auth_failures = 0
        self.messages = 0  # accepted in this session
        self._pending = _Pending.NONE
        self._lookup_expands = False
        self._mechanism: sasl.ServerMechanism | None = None
        self._auth_principal: Principal | None = None  # SCRAM: until final reply
        self._chunk: tuple[bool, Reply | None] | None = None  # (last, refusal)
        self._recipient: tuple[str, RecipientParams] | None = None

    # -------------------------------------------------------------- facts

    @property
    def context(self) -> SMTPContext:
        return SMTPContext(
            listener=self.config.name,
            peer_ip=self.peer_ip,
            peer_host=self.helo,
            secure=self.secure,
            principal=self.principal,
            tls_description=self.tls_description,
        )

    @property
    def login_context(self) -> LoginContext:
        return LoginContext(service=self.config.name, peer_ip=self.peer_ip, secure=self.secure)

    @property
    def utf8(self) -> bool:
        """The open transaction allows UTF-8 (MAIL carried SMTPUTF8)."""
        return self.envelope is not None and self.envelope.params.smtputf8

    @property
    def closed(self) -> bool:
        return self.state is SMTPState.CLOSED

    def max_size(self) -> int:
        return self._max_message_size(self.context)

    def starttls_offered(self) -> bool:
        return self._tls_available and not self.secure and self.config.starttls != "off"

    def _tls_missing(self) -> bool:
        return self.config.starttls == "required" and not self.secure

    def auth_mechanisms(self) -> list[str]:
        """SASL mechanisms offered now (RFC 4954 §3), strongest first."""
        if self._tls_missing():
            return []
        return sasl.advertised_mechanisms(
            secure=self.secure,
            allow_plaintext_equivalent=self._plaintext_equivalent(),
            allow_plaintext_without_tls=self.config.allow_plaintext_auth_without_tls,
        )

    def extensions(self) -> list[str]:
        """EHLO keywords (seed-4 §7.11), in the order they are advertised."""
        size = self.max_size()
        keywords = [
            "PIPELINING",
            f"SIZE {size}" if size else "SIZE",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ]
        if self.config.dsn:
            keywords.append("DSN")
        keywords.append("CHUNKING")
        if self.starttls_offered():
            keywords.append("STARTTLS")
        mechanisms = self.auth_mechanisms()
        if mechanisms:
            keywords.append("AUTH " + " ".join(mechanisms))
        keywords.append("HELP")
        return keywords

    # -------------------------------------------------------------- inputs

    def connected(self, refusal: Reply | None = None) -> list[Action]:
        """The greeting, or a refusal (connection limits, bans) and close."""
        if refusal is not None:
            self.state = SMTPState.CLOSED
            return [Send(refusal), Close()]
        host = self.config.hostname
        return [Send(Reply(220, "", f"{host} {self.config.greeting}"))]

    def line(self, line: bytes) -> list[Action]:
        """One received line: a command, or a SASL response inside AUTH."""
        if self.state is SMTPState.AUTH:
            return self._auth_response(line)
        try:
            command = grammar.parse_command(line, utf8=self.utf8)
        except SMTPSyntaxError as exc:
            return self._refuse(exc.reply)
        return self.command(command)

    def line_too_long(self) -> list[Action]:
        """A line past the framer's limit (RFC 5321 §4.5.3.1.4); ends any SASL exchange."""
        self._end_auth()
        return self._refuse(grammar.LINE_TOO_LONG)

    def command(self, command: Command) -> list[Action]:
        """Dispatch a parsed command through the state table."""
        kind = type(command)
        if kind is Bdat:
            return self._bdat(command)
        if kind not in ALLOWED[self.state]:
            return self._refuse(self._sequence_error(command))
        return _HANDLERS[kind](self, command)

    def timed_out(self) -> list[Action]:
        self.state = SMTPState.CLOSED
        return [Send(timeout(self.config.hostname)), Close()]

    def tls_started(self) -> None:
        """RFC 3207 §4.2: forget everything learnt before the handshake."""
        self.secure = True
        self.state = SMTPState.GREETING
        self.helo = ""
        self.esmtp = False
        self.principal = None
        self.envelope = None

    # -------------------------------------------------------------- port results

    def sender_checked(self) -> list[Action]:
        self._expect(_Pending.SENDER)
        self.state = SMTPState.MAIL
        return [Send(SENDER_OK)]

    def recipient_checked(self) -> list[Action]:
        self._expect(_Pending.RECIPIENT)
        if self.envelope is not None and self._recipient is not None:
            self.envelope.recipients.append(self._recipient)
        self._recipient = None
        self.state = SMTPState.RCPT
        return [Send(RECIPIENT_OK)]

    def delivered(self, queue_id: str) -> list[Action]:
        self._expect(_Pending.DELIVERY)
        self.messages += 1
        self._reset_transaction()
        return [Send(queued(queue_id))]

    def authenticated(self, principal: Principal) -> list[Action]:
        self._expect(_Pending.AUTH)
        final = self._mechanism.server_final() if self._mechanism else b""
        if final:
            # RFC 4954 §4: no data with success, so send it as a last challenge.
            self._auth_principal = principal
            self.state = SMTPState.AUTH
            return [Send(Reply(334, "", sasl.encode_challenge(final).decode()))]
        self.principal = principal
        self._end_auth()
        return [Send(AUTH_OK)]

    def authentication_failed(self, failure: LoginFailed) -> list[Action]:
        self._expect(_Pending.AUTH)
        self._end_auth()
        if failure.response_code == "SYS/TEMP":
            return [Send(AUTH_TEMPORARY)]
        return self._auth_failed()

    def scram_keys(self, keys: sasl.ScramKeys | None) -> list[Action]:
        self._expect(_Pending.KEYS)
        if self._mechanism is None:  # pragma: no cover - guarded by _expect
            return self._auth_failed()
        return self._auth_step(self._mechanism.provide_keys(keys))

    def body_received(self, fault: BodyFault | None) -> list[Action]:
        """The DATA body ended at CRLF.CRLF."""
        if fault is not None:
            self._reset_transaction()
            return self._refuse(_FAULT_REPLIES[fault])
        if self.envelope is None:  # pragma: no cover - DATA needs a transaction
            return self._refuse(BAD_SEQUENCE)
        self._pending = _Pending.DELIVERY
        return [Deliver(self.envelope)]

    def chunk_received(self, fault: BodyFault | None) -> list[Action]:
        """All octets of the last BDAT were read (RFC 3030 §2)."""
        if self._chunk is None:  # pragma: no cover - adapter bug
            return self._refuse(BAD_SEQUENCE)
        last, refusal = self._chunk
        self._chunk = None
        if refusal is not None:
            return self._refuse(refusal)
        if fault is not None:
            self._reset_transaction()
            return self._refuse(_FAULT_REPLIES[fault])
        if not last:
            self.state = SMTPState.CHUNKING
            return [Send(OK)]
        if self.envelope is None:  # pragma: no cover - checked at BDAT
            return self._refuse(BAD_SEQUENCE)
        self.state = SMTPState.DATA
        self._pending = _Pending.DELIVERY
        return [Deliver(self.envelope)]

    def port_failed(self, reply: Reply) -> list[Action]:
        """A port call failed with ``reply`` (a ReplyError, or our 451 for a bug)."""
        pending = self._pending
        self._pending = _Pending.NONE
        if pending is _Pending.SENDER:
            self.envelope = None
            self.state = SMTPState.READY
        elif pending is _Pending.RECIPIENT:
            self._recipient = None
        elif pending is _Pending.DELIVERY:
            self._reset_transaction()
        elif pending in {_Pending.AUTH, _Pending.KEYS}:
            self._end_auth()
        return self._refuse(reply)

    # -------------------------------------------------------------- helpers

    def _expect(self, pending: _Pending) -> None:
        if self._pending is not pending:
            raise RuntimeError(f"no {pending.value} call is pending")
        self._pending = _Pending.NONE

    def _refuse(self, reply: Reply) -> list[Action]:
        actions: list[Action] = [Send(reply)]
        if reply.code >= 500:
            self.errors += 1
            limit = self.config.max_errors
            if limit and self.errors >= limit:
                self.state = SMTPState.CLOSED
                actions += [Send(too_many_errors(self.config.hostname)), Close()]
        return actions

    def _reset_transaction(self) -> None:
        self.envelope = None
        self._recipient = None
        self._chunk = None
        if self.state is not SMTPState.CLOSED:
            self.state = SMTPState.READY if self.helo else SMTPState.GREETING

    def _sequence_error(self, command: Command) -> Reply:
        state = self.state
        if isinstance(command, MailFrom):
            return HELO_FIRST if state is SMTPState.GREETING else NESTED_MAIL
        if state is SMTPState.CHUNKING:
            return CHUNKING_ONLY
        if isinstance(command, RcptTo):
            return HELO_FIRST if state is SMTPState.GREETING else NEED_MAIL
        if isinstance(command, Data):
            return NEED_RCPT if state is SMTPState.MAIL else NEED_MAIL
        if isinstance(command, Auth):
            if state is SMTPState.GREETING:
                return EHLO_FIRST
            return AUTH_IN_TRANSACTION
        return BAD_SEQUENCE

    # -------------------------------------------------------------- handlers

    def _helo(self, command: Command) -> list[Action]:
        if not isinstance(command, Helo | Ehlo):  # pragma: no cover - table
            raise TypeError(command)
        lowered = command.domain.lower()
        if any(text.lower() in lowered for text in self.config.refuse_helo if text):
            self.state = SMTPState.CLOSED
            return [Send(ACCESS_DENIED), Close()]
        # RFC 5321 §4.1.4: HELO/EHLO later in a session acts as RSET.
        self.helo = command.domain
        self.esmtp = isinstance(command, Ehlo)
        self._reset_transaction()
        host = self.config.hostname
        first = f"{host} Hello {command.domain}, I'm pleased to meet you"
        if not self.esmtp:
            return [Send(Reply(250, "", first))]
        return [Send(Reply(250, "", "\n".join([first, *self.extensions()])))]

    def _mail(self, command: Command) -> list[Action]:
        command = _cast(command, MailFrom)
        if self._tls_missing():
            return self._refuse(TLS_REQUIRED)
        if self.config.require_auth and self.principal is None:
            return self._refuse(AUTH_REQUIRED)
        if self.config.max_messages and self.messages >= self.config.max_messages:
            return [Send(TOO_MANY_MESSAGES)]
        params = command.params
        if params != EnvelopeParams() and not self.esmtp:
            return self._refuse(UNSUPPORTED_PARAMETER)  # RFC 5321 §4.1.2
        if not self.config.dsn and (params.ret or params.envid):
            return self._refuse(UNSUPPORTED_PARAMETER)
        limit = self.max_size()
        if limit and params.size is not None and params.size > limit:
            return self._refuse(TOO_BIG)  # RFC 1870 §6.1
        self.envelope = Envelope(sender=command.path, params=params)
        self._pending = _Pending.SENDER
        return [CheckSender(self.envelope)]

    def _rcpt(self, command: Command) -> list[Action]:
        command = _cast(command, RcptTo)
        if self._tls_missing():  # pragma: no cover - MAIL was refused already
            return self._refuse(TLS_REQUIRED)
        params = command.params
        if not self.config.dsn and (params.notify or params.orcpt):
            return self._refuse(UNSUPPORTED_PARAMETER)
        if params != RecipientParams() and not self.esmtp:
            return self._refuse(UNSUPPORTED_PARAMETER)
        if self.envelope is None:  # pragma: no cover - the state says MAIL
            return self._refuse(NEED_MAIL)
        limit = self.config.max_recipients
        if limit and len(self.envelope.recipients) >= limit:
            return [Send(TOO_MANY_RECIPIENTS)]
        self._recipient = (command.path, params)
        self._pending = _Pending.RECIPIENT
        return [CheckRecipient(self.envelope, command.path)]

    def _data(self, command: Command) -> list[Action]:
        self.state = SMTPState.DATA
        return [Send(START_DATA), ReceiveData()]

    def _bdat(self, command: Command) -> list[Action]:
        command = _cast(command, Bdat)
        # RFC 3030 §2: the chunk's octets are read even when BDAT is refused.
        refusal: Reply | None = None
        if self.state not in {SMTPState.RCPT, SMTPState.CHUNKING}:
            if self.state is SMTPState.MAIL:
                refusal = NEED_RCPT
            elif self.state is SMTPState.GREETING:
                refusal = HELO_FIRST
            else:
                refusal = NEED_MAIL
        self._chunk = (command.last, refusal)
        first = self.state is SMTPState.RCPT
        return [ReceiveChunk(command.size, keep=refusal is None, first=first)]

    def _rset(self, command: Command) -> list[Action]:
        self._reset_transaction()
        return [Send(OK)]

    def _noop(self, command: Command) -> list[Action]:
        return [Send(OK)]

    def _quit(self, command: Command) -> list[Action]:
        self.state = SMTPState.CLOSED
        return [Send(BYE), Close()]

    def _vrfy(self, command: Command) -> list[Action]:
        return self._lookup(_cast(command, Vrfy).argument, expand=False)

    def _expn(self, command: Command) -> list[Action]:
        return self._lookup(_cast(command, Expn).argument, expand=True)

    def _lookup(self, argument: str, *, expand: bool) -> list[Action]:
        if not argument.strip():
            return self._refuse(VRFY_SYNTAX)
        self._pending = _Pending.LOOKUP
        self._lookup_expands = expand
        return [Lookup(argument.strip(), expand)]

    def looked_up(self, found: list[str] | None) -> list[Action]:
        """Answer VRFY/EXPN (seed-4 §7.8): disabled or not allowed -> 252 / 502
        (RFC 5321 §3.5.3: never confirm users then); unknown -> 550; else 250 lines."""
        self._expect(_Pending.LOOKUP)
        expand = self._lookup_expands
        if found is None:
            return self._refuse(NO_EXPN) if expand else [Send(CANNOT_VRFY)]
        if not found:
            return self._refuse(LOOKUP_UNKNOWN)
        return [Send(Reply(250, "2.1.5", "\n".join(f"<{address}>" for address in found)))]

    def _help(self, command: Command) -> list[Action]:
        return [Send(HELP_TEXT)]

    def _unknown(self, command: Command) -> list[Action]:
        return self._refuse(UNRECOGNIZED)

    def _etrn(self, command: Command) -> list[Action]:
        return self._refuse(NOT_IMPLEMENTED)  # seed-1 §11.2: server ETRN optional

    def _starttls(self, command: Command) -> list[Action]:
        if self.secure:
            return self._refuse(TLS_ACTIVE)
        if not self.starttls_offered():
            return self._refuse(TLS_UNAVAILABLE)
        self.tls_started()
        return [Send(TLS_READY), StartTLSNow()]

    # -------------------------------------------------------------- AUTH

    def _auth(self, command: Command) -> list[Action]:
        command = _cast(command, Auth)
        if self.principal is not None:
            return self._refuse(AUTH_ALREADY)  # RFC 4954 §4
        if self._tls_missing():
            return self._refuse(TLS_REQUIRED)
        name = command.mechanism
        offered = self.auth_mechanisms()
        if name not in offered:
            if name in {"PLAIN", "LOGIN"} and not self.secure:
                return self._refuse(AUTH_ENCRYPTION_REQUIRED)
            return self._refuse(AUTH_UNKNOWN_MECHANISM)
        mechanism = sasl.server_mechanism(
            name,
            self.config.hostname,
            allow_plaintext_equivalent=self._plaintext_equivalent(),
        )
        if mechanism is None:
            return self._refuse(AUTH_UNKNOWN_MECHANISM)
        initial: bytes | None = None
        if command.initial is not None:
            try:
                initial = sasl.decode_client_response(command.initial)
            except sasl.SASLCancelled:
                return self._refuse(AUTH_CANCELLED)
            except sasl.SASLMalformed:
                return self._refuse(AUTH_BAD_BASE64)
        self._mechanism = mechanism
        return self._auth_step(mechanism.start(initial))

    def _auth_response(self, line: bytes) -> list[Action]:
        try:
            data = sasl.decode_client_response(line)
        except sasl.SASLCancelled:
            self._end_auth()
            return self._refuse(AUTH_CANCELLED)
        except sasl.SASLMalformed:
            self._end_auth()
            return self._refuse(AUTH_BAD_BASE64)
        if self._auth_principal is not None:
            # The client acknowledged the SCRAM server-final message.
            self.principal = self._auth_principal
            self._end_auth()
            return [Send(AUTH_OK)]
        if self._mechanism is None:  # pragma: no cover - AUTH state has one
            self._end_auth()
            return self._refuse(BAD_SEQUENCE)
        return self._auth_step(self._mechanism.respond(data))

    def _auth_step(self, step: sasl.Step) -> list[Action]:
        if isinstance(step, sasl.Challenge):
            self.state = SMTPState.AUTH
            text = sasl.encode_challenge(step.data).decode("ascii")
            return [Send(Reply(334, "", text))]
        if isinstance(step, sasl.NeedScramKeys):
            self.state = SMTPState.AUTH
            self._pending = _Pending.KEYS
            return [FetchScramKeys(step.username)]
        if isinstance(step, sasl.Done):
            self.state = SMTPState.AUTH
            self._pending = _Pending.AUTH
            return [Authenticate(step.credentials, self.login_context)]
        self._end_auth()
        return self._auth_failed()

    def _auth_failed(self) -> list[Action]:
        self.auth_failures += 1
        limit = self.config.max_auth_failures
        if limit and self.auth_failures >= limit:
            self.state = SMTPState.CLOSED
            return [
                Send(AUTH_INVALID),
                Send(too_many_auth_failures(self.config.hostname)),
                Close(),
            ]
        return self._refuse(AUTH_INVALID)

    def _end_auth(self) -> None:
        self._mechanism = None
        self._auth_principal = None
        if self.state is SMTPState.AUTH:
            self.state = SMTPState.READY


_FAULT_REPLIES: dict[BodyFault, Reply] = {
    BodyFault.TOO_BIG: TOO_BIG,
    BodyFault.BARE_LINE_ENDING: BARE_LINE_ENDING,
    BodyFault.LINE_TOO_LONG: DATA_LINE_TOO_LONG,
    BodyFault.TEMPORARY: TEMP_FAILURE,
}

_HANDLERS: dict[type[Command], Handler] = {
    Helo: SMTPSession._helo,
    Ehlo: SMTPSession._helo,
    MailFrom: SMTPSession._mail,
    RcptTo: SMTPSession._rcpt,
    Data: SMTPSession._data,
    Bdat: SMTPSession._bdat,
    Rset: SMTPSession._rset,
    Noop: SMTPSession._noop,
    Quit: SMTPSession._quit,
    Vrfy: SMTPSession._vrfy,
    Expn: SMTPSession._expn,
    Help: SMTPSession._help,
    StartTLS: SMTPSession._starttls,
    Auth: SMTPSession._auth,
    Etrn: SMTPSession._etrn,
    Unknown: SMTPSession._unknown,
}
