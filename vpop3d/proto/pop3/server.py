"""Twisted adapter for the POP3 server: framing, ordering, timeouts, TLS, streaming.

The adapter owns the bytes: it frames lines, feeds them one at a time to
:class:`~vpop3d.proto.pop3.session.POP3Session` (one command in flight, so
pipelined commands are answered in order, RFC 2449 §6.6), streams RETR/TOP bodies
through a push producer, starts TLS for STLS, and enforces the idle timer.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IPushProducer,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from vpop3d.core import sasl
from vpop3d.core.reply import Reply, ReplyError
from vpop3d.ports import Authenticator, MaildropAccess
from vpop3d.proto.pop3 import grammar
from vpop3d.proto.pop3.grammar import BodyEncoder
from vpop3d.proto.pop3.session import (
    TEMP_FAILURE,
    Answer,
    BodyResponse,
    POP3Session,
    Response,
    SessionPolicy,
)

_log = Logger()
_transcript = Logger(namespace="vpop3d.pop3.session")

CHUNK_SIZE = 64 * 1024


class STLSMode(enum.Enum):
    """Manual L6300: None/STLS (optional), STLS (required), or no STLS at all."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class POP3ListenerConfig:
    """One POP3 service instance (seed-4 §6: General and Advanced tabs)."""

    name: str = "POP3 Server"
    hostname: str = "localhost"
    stls: STLSMode = STLSMode.OPTIONAL
    implicit_tls: bool = False  # port 995: the endpoint already speaks TLS
    max_failed_logins: int = 3  # manual L6325
    idle_timeout: float = 600.0  # RFC 1939 §3: at least 10 minutes
    allow_plaintext_without_tls: bool = True
    last_line_fix: bool = False  # manual L6322, Microsoft Internet Mail 1160
    session_log: bool = False  # POP3SVR.LOG (manual L6308)

    def __post_init__(self) -> None:
        if self.idle_timeout < 600:
            raise ValueError("idle_timeout must be at least 600 s (RFC 1939 §3)")
        if self.max_failed_logins < 1:
            raise ValueError("max_failed_logins must be at least 1")


class _Transport(TypingProtocol):
    """The parts of a TCP/TLS transport this adapter uses (typed for mypy)."""

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...  # noqa: N802 - Twisted's name
    def abortConnection(self) -> None: ...  # noqa: N802 - Twisted's name
    def getPeer(self) -> IAddress: ...  # noqa: N802 - Twisted's name
    def pauseProducing(self) -> None: ...  # noqa: N802 - Twisted's name
    def resumeProducing(self) -> None: ...  # noqa: N802 - Twisted's name
    def registerProducer(self, producer: object, streaming: bool) -> None: ...  # noqa: N802
    def unregisterProducer(self) -> None: ...  # noqa: N802 - Twisted's name
    def startTLS(self, context: object) -> None: ...  # noqa: N802


class _DelayedCall(TypingProtocol):
    def active(self) -> bool: ...
    def cancel(self) -> None: ...
    def reset(self, seconds: float, /) -> None: ...


class Clock(TypingProtocol):
    """What the adapter needs of ``IReactorTime`` (the reactor or ``task.Clock``)."""

    def callLater(  # noqa: N802 - Twisted's name
        self, delay: float, callable: Callable[..., object], /, *args: object
    ) -> object: ...


@implementer(IPushProducer)
class _BodySender:
    """Streams one message through a BodyEncoder without loading it whole.

    A push producer: it writes chunks until the transport pauses it (its buffer
    is full) and carries on when resumed; memory stays at about one chunk.
    """

    def __init__(
        self,
        transport: _Transport,
        body: BinaryIO,
        encoder: BodyEncoder,
        progress: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._body = body
        self._encoder = encoder
        self._progress = progress
        self._paused = False
        self._running = False
        self._finished = False
        self.done: Deferred[None] = Deferred()

    def start(self) -> Deferred[None]:
        self._transport.registerProducer(self, True)
        self.resumeProducing()
        return self.done

    def pauseProducing(self) -> None:  # noqa: N802 - IPushProducer
        self._paused = True

    def resumeProducing(self) -> None:  # noqa: N802 - IPushProducer
        self._paused = False
        if self._running:
            return  # called from inside our own write(); the loop carries on
        self._running = True
        try:
            while not self._paused and not self._finished:
                chunk = self._body.read(CHUNK_SIZE)
                if not chunk:
                    self._transport.write(self._encoder.finish())
                    self._finish(None)
                    break
                data = self._encoder.feed(chunk)
                if data:
                    self._transport.write(data)
                    self._progress()
                if self._encoder.done:
                    self._finish(None)
        except Exception as exc:  # noqa: BLE001 - the stream broke; end the response
            self._finish(exc)
        finally:
            self._running = False

    def stopProducing(self) -> None:  # noqa: N802 - IPushProducer
        self._finish(ConnectionError("connection lost during transfer"))

    def _finish(self, failure: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._body.close()
        self._transport.unregisterProducer()
        if failure is None:
            self.done.callback(None)
        else:
            self.done.errback(failure)


class POP3ServerProtocol(Protocol):
    """One POP3 connection: line framing around a :class:`POP3Session`."""

    def __init__(self, factory: POP3ServerFactory, connection_id: int) -> None:
        self._factory = factory
        self._id = connection_id
        self._buffer = bytearray()
        self._busy = False
        self._processing = False
        self._closing = False
        self._discarding = False
        self._timer: _DelayedCall | None = None
        self._sender: _BodySender | None = None
        self._session: POP3Session | None = None
        self._config = factory.config

    # ------------------------------------------------------------ connection

    @property
    def _transport(self) -> _Transport:
        return cast(_Transport, self.transport)

    @property
    def session(self) -> POP3Session:
        if self._session is None:
            raise RuntimeError("not connected")
        return self._session

    @override
    def connectionMade(self) -> None:
        peer = self._transport.getPeer()
        peer_ip = str(getattr(peer, "host", peer))
        refusal = self._factory.refusal(peer_ip)
        if refusal is not None:
            # Seed-4 §15/§7.10: IP access tables and IDS blocks refuse at connect.
            _log.info("POP3 refused {peer}: {text}", peer=peer_ip, text=refusal.text)
            self._closing = True
            self._transport.write(f"-ERR {refusal.text}".encode() + grammar.CRLF)
            self._transport.loseConnection()
            return
        self._config, self._session = self._factory.new_session(peer_ip)
        _log.info(
            "POP3 {listener} connection {conn} from {peer}",
            listener=self._config.name,
            conn=self._id,
            peer=peer_ip,
        )
        self._send(self.session.greeting())
        self._arm_timer()

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        if not self._busy:
            self._arm_timer()
        self._process()

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        self._cancel_timer()
        if self._sender is not None:
            self._sender.stopProducing()
        if self._session is not None:
            self._session.connection_lost()
        _log.info("POP3 connection {conn} closed", conn=self._id)

    # ------------------------------------------------------------ idle timer

    def _arm_timer(self) -> None:
        timeout = self._config.idle_timeout
        if self._timer is not None and self._timer.active():
            self._timer.reset(timeout)
        else:
            call = self._factory.clock.callLater(timeout, self._timed_out)
            self._timer = cast(_DelayedCall, call)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        # RFC 1939 §3: close without a response and without entering UPDATE.
        self._timer = None
        _log.info("POP3 connection {conn} idle timeout", conn=self._id)
        self._closing = True
        if self._sender is not None:
            # The client stopped reading a RETR; its unsent data will never drain.
            self._transport.abortConnection()
        else:
            self._transport.loseConnection()

    # ------------------------------------------------------------ framing

    def _process(self) -> None:
        if self._processing:
            return  # a command finished synchronously inside this loop
        self._processing = True
        try:
            while not self._busy and not self._closing:
                line = self._next_line()
                if line is None:
                    return
                self._handle(line)
        finally:
            self._processing = False

    def _next_line(self) -> bytes | None:
        session = self.session
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > session.line_limit:
                    self._discarding = True  # RFC 2449 §4: too long; drop it
                    self._buffer.clear()
                return None
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._discarding or len(line) + 2 > session.line_limit:
                self._discarding = False
                self._log_line(b"<line too long>")
                self._send(session.line_too_long())
                continue
            return line

    # ------------------------------------------------------------ commands

    def _handle(self, line: bytes) -> None:
        self._log_line(line)
        self._busy = True
        self._cancel_timer()
        self._transport.pauseProducing()
        answer = Deferred.fromCoroutine(self.session.receive(line))
        answer.addCallback(self._answer)
        answer.addErrback(self._failed)
        answer.addBoth(self._command_done)

    def _answer(self, answer: Answer) -> Deferred[None] | None:
        if self._closing:
            if isinstance(answer, BodyResponse):
                answer.body.close()
            return None
        if isinstance(answer, Response):
            self._send(answer)
            return None
        self._log_reply(answer.status)
        self._transport.write(answer.status.encode("utf-8") + grammar.CRLF)
        self._sender = _BodySender(self._transport, answer.body, answer.encoder, self._arm_timer)
        self._arm_timer()  # a client that stops reading the body is idle too
        return self._sender.start()

    def _failed(self, failure: Failure) -> None:
        if self._closing:
            return
        if isinstance(failure.value, ReplyError):
            self._send(Response(f"-ERR {failure.value.reply.text}"))
            return
        # Our own fault: log it, answer with a temporary failure, stay usable.
        _log.failure("POP3 connection {conn} command failed", failure, conn=self._id)
        if self._sender is not None:
            # The +OK line is out; a broken stream cannot be answered with -ERR.
            self._closing = True
            self._transport.loseConnection()
            return
        self._send(Response(TEMP_FAILURE))

    def _command_done(self, _: object) -> None:
        self._busy = False
        self._sender = None
        if self._closing:
            return
        self._transport.resumeProducing()
        self._arm_timer()
        self._process()

    def _send(self, response: Response) -> None:
        self._log_reply(response.status)
        self._transport.write(response.encode())
        if response.start_tls:
            self._start_tls()
        if response.close:
            self._closing = True
            self._cancel_timer()
            self._transport.loseConnection()

    def _start_tls(self) -> None:
        context = self._factory.tls_context
        if context is None:  # pragma: no cover - the policy offers STLS only with one
            raise RuntimeError("STLS without a TLS context")
        # RFC 2595 §4 / RFC 3207 §6 class of bug: drop anything pipelined after
        # STLS, so plaintext bytes cannot be injected into the TLS session.
        self._buffer.clear()
        self._transport.startTLS(context)
        self.session.tls_started()

    # ------------------------------------------------------------ session log

    def _log_line(self, line: bytes) -> None:
        if not self._config.session_log:
            return
        shown = b"***" if self.session.in_auth_exchange else grammar.redact(line)
        _transcript.info("{conn} C: {line}", conn=self._id, line=shown.decode("utf-8", "replace"))

    def _log_reply(self, status: str) -> None:
        if self._config.session_log:
            _transcript.info("{conn} S: {line}", conn=self._id, line=status)


class POP3ServerFactory(Factory):
    """Builds POP3 connections for one listener; dependencies come in here."""

    def __init__(
        self,
        config: POP3ListenerConfig | Callable[[], POP3ListenerConfig],
        authenticator: Authenticator,
        maildrops: MaildropAccess,
        clock: Clock,
        tls_context: object | None = None,
        *,
        make_challenge: Callable[[str], bytes] = sasl.make_challenge,
        gate: Callable[[str], Reply | None] | None = None,
    ) -> None:
        """Wire one listener.

        ``config`` may be a callable, read for each new connection so that admin
        changes apply without a restart. ``tls_context`` (an
        ``IOpenSSLServerConnectionCreator`` such as ``CertificateOptions``) enables
        STLS; ``make_challenge`` makes the APOP greeting timestamp; ``gate(peer_ip)``
        may refuse a connection before the greeting (access rules, IDS blocks).
        """
        self._config_source = config
        first = self._current()
        self._check(first, tls_context)
        self.config = first
        self.clock = clock
        self.tls_context = tls_context
        self._authenticator = authenticator
        self._maildrops = maildrops
        self._make_challenge = make_challenge
        self._gate = gate
        self._ids = itertools.count(1)

    def refusal(self, peer_ip: str) -> Reply | None:
        """Why a connection from ``peer_ip`` is refused, or None to serve it."""
        return self._gate(peer_ip) if self._gate is not None else None

    def _current(self) -> POP3ListenerConfig:
        source = self._config_source
        return source if isinstance(source, POP3ListenerConfig) else source()

    @staticmethod
    def _check(config: POP3ListenerConfig, tls_context: object | None) -> None:
        if config.stls is STLSMode.REQUIRED and not config.implicit_tls and tls_context is None:
            raise ValueError(f"{config.name}: STLS required but no certificate")

    def _policy(self, config: POP3ListenerConfig) -> SessionPolicy:
        stls_on = config.stls is not STLSMode.OFF and not config.implicit_tls
        return SessionPolicy(
            hostname=config.hostname,
            tls_available=stls_on and self.tls_context is not None,
            tls_required=config.stls is STLSMode.REQUIRED and not config.implicit_tls,
            allow_plaintext_without_tls=config.allow_plaintext_without_tls,
            max_failed_logins=config.max_failed_logins,
            strip_trailing_blank_lines=config.last_line_fix,
        )

    def new_session(self, peer_ip: str) -> tuple[POP3ListenerConfig, POP3Session]:
        """The listener's current config and a fresh session for one connection.

        APOP gets a greeting timestamp only when it may be used (RFC 1939 §7).
        """
        config = self._current()
        self._check(config, self.tls_context)
        timestamp = None
        if self._authenticator.plaintext_equivalent_enabled():
            timestamp = self._make_challenge(config.hostname)
        session = POP3Session(
            self._policy(config),
            self._authenticator,
            self._maildrops,
            peer_ip=peer_ip,
            secure=config.implicit_tls,
            apop_timestamp=timestamp,
        )
        return config, session

    @override
    def buildProtocol(self, addr: IAddress | None) -> POP3ServerProtocol:
        return POP3ServerProtocol(self, next(self._ids))
