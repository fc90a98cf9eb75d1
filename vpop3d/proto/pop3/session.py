"""The POP3 session state machine (RFC 1939, 2449, 2595, 5034, 6856), free of I/O.

:class:`POP3Session` takes one client line at a time and answers with a
:class:`Response` (status line, optional multi-line data, close / start-TLS flags)
or a :class:`BodyResponse` (a message stream the adapter sends through a
:class:`~vpop3d.proto.pop3.grammar.BodyEncoder`). It talks to the rest of the
server only through the ports (Authenticator, MaildropAccess, Maildrop).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from twisted.logger import Logger

from vpop3d.core import sasl
from vpop3d.core.reply import LoginFailed, MailboxInUse
from vpop3d.ports import (
    Authenticator,
    LoginContext,
    Maildrop,
    MaildropAccess,
    MaildropEntry,
    Principal,
)
from vpop3d.proto.pop3 import grammar
from vpop3d.proto.pop3.grammar import (
    Apop,
    Auth,
    BodyEncoder,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    POP3SyntaxError,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)

# Texts from the manual's sample session (seed-1 §11.1, manual L1473-1507).
GREETING = "+OK POP3 server ready"
USER_ACCEPTED = "+OK Enter password"
SIGNING_OFF = "+OK signing off"
TEMP_FAILURE = "-ERR [SYS/TEMP] Temporary server error, please try again later"
AUTH_FAILED = "Authentication failed"
WRONG_STATE = "-ERR Command not valid in this state"
STLS_FIRST = "-ERR Must issue a STLS command first"
PLAINTEXT_REFUSED = "-ERR Plaintext authentication disallowed without TLS"
LINE_TOO_LONG = "-ERR Line too long"


class POP3State(enum.Enum):
    """RFC 1939 §3 session states."""

    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


# RFC 1939 §4-§7, RFC 2449 §5 (CAPA in both states), RFC 2595 §4 (STLS),
# RFC 6856 §2 (UTF8 before login).
_ALLOWED: dict[POP3State, frozenset[type[Command]]] = {
    POP3State.AUTHORIZATION: frozenset({User, Pass, Apop, Auth, Capa, Stls, Utf8, Quit}),
    POP3State.TRANSACTION: frozenset({Capa, Stat, List, Uidl, Retr, Top, Dele, Rset, Noop, Quit}),
    POP3State.UPDATE: frozenset(),
}


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """What one listener allows; built by the adapter from its config."""

    hostname: str
    tls_available: bool = False  # STLS may be offered (certificate, mode, not yet TLS)
    tls_required: bool = False  # no login before STLS (manual L6302)
    allow_plaintext_without_tls: bool = True
    max_failed_logins: int = 3  # manual L6325: per session, then disconnect
    strip_trailing_blank_lines: bool = False  # manual L6322, off by default


@dataclass(frozen=True, slots=True)
class Response:
    """A status line, optional multi-line data (not yet dot-stuffed), and flags."""

    status: str
    lines: Sequence[str] | None = None
    close: bool = False
    start_tls: bool = False

    def encode(self) -> bytes:
        return grammar.encode_lines(self.status, self.lines)


@dataclass(frozen=True, slots=True)
class BodyResponse:
    """``+OK`` then a message streamed from ``body`` through ``encoder``."""

    status: str
    body: BinaryIO
    encoder: BodyEncoder


Answer = Response | BodyResponse

_log = Logger()


def _ok(text: str = "") -> Response:
    return Response(f"+OK {text}" if text else "+OK")


def _err(text: str) -> Response:
    return Response(f"-ERR {text}")


class POP3Session:
    """One client's POP3 conversation, fed line by line."""

    def __init__(
        self,
        policy: SessionPolicy,
        authenticator: Authenticator,
        maildrops: MaildropAccess,
        *,
        peer_ip: str,
        secure: bool,
        apop_timestamp: bytes | None = None,
    ) -> None:
        """``apop_timestamp`` is the greeting's ``<...>`` challenge (None: no APOP)."""
        self._policy = policy
        self._authenticator = authenticator
        self._maildrops = maildrops
        self._peer_ip = peer_ip
        self._secure = secure
        self._apop_timestamp = apop_timestamp
        self.state = POP3State.AUTHORIZATION
        self._username: str | None = None
        self._failures = 0
        self._mechanism: sasl.ServerMechanism | None = None
        self._scram_principal: Principal | None = None
        self._maildrop: Maildrop | None = None
        self._deleted: set[int] = set()
        self._closed = False

    # ------------------------------------------------------------ adapter API

    def greeting(self) -> Response:
        """RFC 1939 §4 greeting; carries the APOP timestamp when APOP is on (§7)."""
        if self._apop_timestamp is None:
            return Response(GREETING)
        return Response(f"{GREETING} {self._apop_timestamp.decode('ascii')}")

    @property
    def in_auth_exchange(self) -> bool:
        """True while the next line is a SASL response, not a command."""
        return self._mechanism is not None or self._scram_principal is not None

    @property
    def line_limit(self) -> int:
        """Longest acceptable line including CRLF (RFC 2449 §4, RFC 5034 §4)."""
        if self.in_auth_exchange:
            return grammar.MAX_AUTH_RESPONSE_LINE
        return grammar.MAX_COMMAND_LINE

    @property
    def secure(self) -> bool:
        return self._secure

    def line_too_long(self) -> Response:
        """The client sent a line over :attr:`line_limit`; an exchange is cancelled."""
        self._reset_auth()
        return Response(LINE_TOO_LONG)

    def tls_started(self) -> None:
        """RFC 2595 §4: after the handshake, forget what the client said before."""
        self._secure = True
        self._username = None

    def connection_lost(self) -> None:
        """Dropped connection or idle timeout: release the lock, delete nothing."""
        self._closed = True
        self._reset_auth()
        maildrop, self._maildrop = self._maildrop, None
        if maildrop is not None and self.state is POP3State.TRANSACTION:
            maildrop.release()  # RFC 1939 §6: no UPDATE state without QUIT

    async def receive(self, line: bytes) -> Answer:
        """Answer one client line (without its CRLF)."""
        if self.in_auth_exchange:
            return await self._auth_continue(line)
        try:
            command = grammar.parse_command(line)
        except POP3SyntaxError as exc:
            return _err(exc.text)
        if type(command) not in _ALLOWED[self.state]:
            return Response(WRONG_STATE)
        try:
            return await self._dispatch(command)
        except _Refusal as refusal:
            return _err(refusal.text)

    async def _dispatch(self, command: Command) -> Answer:
        match command:
            case Capa():
                return self._capa()
            case Quit():
                return await self._quit()
            case User():
                return self._user(command)
            case Pass():
                return await self._pass(command)
            case Apop():
                return await self._apop(command)
            case Auth():
                return await self._auth(command)
            case Stls():
                return self._stls()
            case Utf8():
                # RFC 6856 §2: arguments are UTF-8 anyway (the grammar decodes UTF-8)
                # and messages go out as stored; nothing else changes.
                return _ok("UTF8 enabled")
            case Stat():
                count, octets = self._totals()
                return _ok(f"{count} {octets}")
            case List() | Uidl():
                return self._listing(command)
            case Retr() | Top():
                return await self._retrieve(command)
            case Dele():
                self._entry(command.msg)
                self._deleted.add(command.msg)
                return _ok(f"message {command.msg} deleted")
            case Rset():
                self._deleted.clear()
                return self._summary()
            case Noop():
                return _ok()

    # ------------------------------------------------------------ CAPA, STLS

    def _plaintext_allowed(self) -> bool:
        return self._secure or self._policy.allow_plaintext_without_tls

    def _must_stls(self) -> bool:
        return self._policy.tls_required and not self._secure

    def _mechanisms(self) -> list[str]:
        if self._must_stls():
            return []
        return sasl.advertised_mechanisms(
            secure=self._secure,
            allow_plaintext_equivalent=self._authenticator.plaintext_equivalent_enabled(),
            allow_plaintext_without_tls=self._policy.allow_plaintext_without_tls,
        )

    def _capa(self) -> Response:
        # RFC 2449 §6; capabilities of the AUTHORIZATION state are announced in
        # both states (§5).
        lines = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self._plaintext_allowed() and not self._must_stls():
            lines.append("USER")
        mechanisms = self._mechanisms()
        if mechanisms:
            lines.append("SASL " + " ".join(mechanisms))
        if self._policy.tls_available and not self._secure:
            lines.append("STLS")  # RFC 2595 §4
        lines.append("UTF8 USER")  # RFC 6856 §2: UTF-8 user names and passwords
        lines.append("IMPLEMENTATION vpop3d")
        return Response("+OK Capability list follows", lines)

    def _stls(self) -> Response:
        if self._secure:
            return _err("Command not permitted when TLS active")  # RFC 2595 §4
        if not self._policy.tls_available:
            return _err("STLS not available")
        return Response("+OK Begin TLS negotiation", start_tls=True)

    def _login_refusal(self, plaintext: bool) -> Response | None:
        if self._must_stls():
            return Response(STLS_FIRST)
        if plaintext and not self._plaintext_allowed():
            return Response(PLAINTEXT_REFUSED)
        return None

    # ------------------------------------------------------------ USER/PASS, APOP

    def _user(self, command: User) -> Response:
        refusal = self._login_refusal(plaintext=True)
        if refusal is not None:
            return refusal
        self._username = command.name
        return Response(USER_ACCEPTED)

    async def _pass(self, command: Pass) -> Response:
        refusal = self._login_refusal(plaintext=True)
        if refusal is not None:
            return refusal
        if self._username is None:
            return _err("No user name given, send USER first")
        username, self._username = self._username, None
        return await self._login(sasl.PasswordCredentials(username, command.password))

    async def _apop(self, command: Apop) -> Response:
        refusal = self._login_refusal(plaintext=False)
        if refusal is not None:
            return refusal
        if self._apop_timestamp is None:
            return _err("APOP not available")
        credentials = sasl.ChallengeCredentials(
            command.name, self._apop_timestamp, command.digest, "apop"
        )
        return await self._login(credentials)

    # ------------------------------------------------------------ AUTH (RFC 5034)

    async def _auth(self, command: Auth) -> Response:
        refusal = self._login_refusal(plaintext=False)
        if refusal is not None:
            return refusal
        if command.mechanism is None:
            return Response("+OK Supported mechanisms follow", self._mechanisms())
        name = command.mechanism
        if name in ("PLAIN", "LOGIN") and not self._plaintext_allowed():
            return Response(PLAINTEXT_REFUSED)
        if name not in self._mechanisms():
            return _err("Unrecognized authentication type")
        mechanism = sasl.server_mechanism(
            name,
            self._policy.hostname,
            allow_plaintext_equivalent=self._authenticator.plaintext_equivalent_enabled(),
        )
        if mechanism is None:
            return _err("Unrecognized authentication type")
        initial: bytes | None = None
        if command.initial is not None:
            try:
                initial = sasl.decode_client_response(command.initial.encode("ascii"))
            except sasl.SASLCancelled:
                return _err("Authentication cancelled")
            except sasl.SASLMalformed:
                return _err("Invalid base64 in initial response")
        self._mechanism = mechanism
        return await self._auth_step(mechanism.start(initial))

    async def _auth_continue(self, line: bytes) -> Response:
        if self._scram_principal is not None:
            # RFC 5034 §4: success data went as a final "+" challenge; the client
            # answers with an empty response and then gets +OK.
            principal, self._scram_principal = self._scram_principal, None
            if line.strip() == b"*":
                return _err("Authentication cancelled")
            return await self._open(principal)
        mechanism = self._mechanism
        if mechanism is None:  # pragma: no cover - guarded by in_auth_exchange
            return Response(TEMP_FAILURE)
        try:
            data = sasl.decode_client_response(line)
        except sasl.SASLCancelled:
            self._reset_auth()
            return _err("Authentication cancelled")  # RFC 5034 §4
        except sasl.SASLMalformed:
            self._reset_auth()
            return _err("Invalid base64 in response")
        return await self._auth_step(mechanism.respond(data))

    async def _auth_step(self, step: sasl.Step) -> Response:
        mechanism = self._mechanism
        while isinstance(step, sasl.NeedScramKeys):
            keys = await self._authenticator.scram_keys(step.username)
            if self._closed or mechanism is None:
                return Response(TEMP_FAILURE, close=True)
            step = mechanism.provide_keys(keys)
        match step:
            case sasl.Challenge(data):
                return Response("+ " + sasl.encode_challenge(data).decode("ascii"))
            case sasl.Failed():
                self._reset_auth()
                return self._count_failure(LoginFailed())
            case sasl.Done(credentials):
                self._reset_auth()
                principal = await self._authenticate(credentials)
                if isinstance(principal, Response):
                    return principal
                final = mechanism.server_final() if mechanism is not None else b""
                if final:
                    self._scram_principal = principal
                    return Response("+ " + sasl.encode_challenge(final).decode("ascii"))
                return await self._open(principal)

    def _reset_auth(self) -> None:
        self._mechanism = None
        self._scram_principal = None

    # ------------------------------------------------------------ login

    async def _login(self, credentials: sasl.Credentials) -> Response:
        principal = await self._authenticate(credentials)
        if isinstance(principal, Response):
            return principal
        return await self._open(principal)

    async def _authenticate(self, credentials: sasl.Credentials) -> Principal | Response:
        context = LoginContext(service="pop3", peer_ip=self._peer_ip, secure=self._secure)
        try:
            return await self._authenticator.authenticate(credentials, context)
        except LoginFailed as failure:
            return self._count_failure(failure)

    def _count_failure(self, failure: LoginFailed) -> Response:
        # RFC 2449 §8 / RFC 3206 response codes; manual L6325: N failures, then drop.
        if failure.response_code != "AUTH":
            return _err(f"[{failure.response_code}] {failure.text}")
        self._failures += 1
        if self._failures >= self._policy.max_failed_logins:
            return Response(
                f"-ERR [AUTH] {failure.text}; too many failed logins, goodbye",
                close=True,
            )
        return _err(f"[AUTH] {failure.text}")

    async def _open(self, principal: Principal) -> Response:
        try:
            maildrop = await self._maildrops.open_maildrop(principal)
        except MailboxInUse:
            # RFC 2449 §8.1.1; manual L1461: one session per mailbox.
            return _err("[IN-USE] Mailbox locked by another session")
        if self._closed:
            maildrop.release()  # the client went away while we waited
            return Response(TEMP_FAILURE, close=True)
        self._maildrop = maildrop
        self._deleted = set()
        self.state = POP3State.TRANSACTION
        return self._summary()

    # ------------------------------------------------------------ TRANSACTION

    def _entries(self) -> Sequence[MaildropEntry]:
        return self._maildrop.entries if self._maildrop is not None else ()

    def _totals(self) -> tuple[int, int]:
        live = [
            entry for number, entry in enumerate(self._entries(), 1) if number not in self._deleted
        ]
        return len(live), sum(entry.size for entry in live)

    def _summary(self) -> Response:
        count, octets = self._totals()
        return _ok(f"{count} messages ({octets} octets)")

    def _entry(self, number: int) -> MaildropEntry:
        entries = self._entries()
        if number > len(entries):
            raise _Refusal(
                f"no such message, only {len(entries)} messages in maildrop"
            )  # RFC 1939 §5 LIST example
        if number in self._deleted:
            raise _Refusal(f"message {number} already deleted")
        return entries[number - 1]

    def _listing(self, command: List | Uidl) -> Response:
        def item(entry: MaildropEntry) -> str:
            return entry.uidl if isinstance(command, Uidl) else str(entry.size)

        if command.msg is not None:
            return _ok(f"{command.msg} {item(self._entry(command.msg))}")
        count, octets = self._totals()
        lines = [
            f"{number} {item(entry)}"
            for number, entry in enumerate(self._entries(), 1)
            if number not in self._deleted
        ]
        return Response(f"+OK {count} messages ({octets} octets)", lines)

    async def _retrieve(self, command: Retr | Top) -> Answer:
        entry = self._entry(command.msg)
        maildrop = self._maildrop
        if maildrop is None:  # pragma: no cover - TRANSACTION has a maildrop
            return Response(TEMP_FAILURE)
        body = await maildrop.open_body(entry.message_id)
        if isinstance(command, Top):
            return BodyResponse("+OK top of message follows", body, BodyEncoder(command.lines))
        encoder = BodyEncoder(strip_trailing_blank_lines=self._policy.strip_trailing_blank_lines)
        return BodyResponse(f"+OK {entry.size} octets", body, encoder)

    async def _quit(self) -> Response:
        maildrop = self._maildrop
        if self.state is not POP3State.TRANSACTION or maildrop is None:
            return Response(SIGNING_OFF, close=True)
        # RFC 1939 §6: UPDATE state; removal happens only here.
        self.state = POP3State.UPDATE
        self._maildrop = None
        entries = maildrop.entries
        deleted = [entries[number - 1].message_id for number in sorted(self._deleted)]
        try:
            await maildrop.commit(deleted)
        except Exception:  # noqa: BLE001 - reported to the client, logged below
            _log.failure("POP3 commit failed for {peer}", peer=self._peer_ip)
            maildrop.release()
            return Response(
                "-ERR [SYS/TEMP] Some deleted messages not removed", close=True
            )  # RFC 1939 §6
        return Response(SIGNING_OFF, close=True)


class _Refusal(Exception):
    """A transaction command names a missing or deleted message."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
