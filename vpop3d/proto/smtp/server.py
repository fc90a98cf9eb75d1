"""Twisted adapter for the SMTP server session (MTA, submission, SMTPS).

``SMTPServerProtocol`` frames bytes (``proto.line``), feeds ``SMTPSession`` and
performs the actions it returns. One command is in flight at a time: while a port
call is pending the transport is paused and pipelined input stays buffered, so
replies come out in command order (RFC 2920 §3.1). DATA bodies stream into the
``DeliveryAgent`` spool; a body with a bare CR or LF anywhere is refused after its
real ``CRLF.CRLF`` end (``554 5.6.0``), which makes SMTP smuggling impossible.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IReactorTime,
    ITLSTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from vpop3d.core.reply import LoginFailed, Reply, ReplyError
from vpop3d.ports import Authenticator, DeliveryAgent, Spool
from vpop3d.proto.line import DotBodyReader, LineBuffer, LineTooLong
from vpop3d.proto.smtp import grammar
from vpop3d.proto.smtp.session import (
    TEMP_FAILURE,
    Action,
    Authenticate,
    BodyFault,
    CheckRecipient,
    CheckSender,
    Close,
    Deliver,
    FetchScramKeys,
    Lookup,
    ReceiveChunk,
    ReceiveData,
    Send,
    SMTPListenerConfig,
    SMTPSession,
    SMTPState,
    StartTLSNow,
    too_many_connections,
)

__all__ = ["SMTPListenerConfig", "SMTPServerFactory", "SMTPServerProtocol"]

TLSCreator = IOpenSSLServerConnectionCreator | CertificateOptions
_T = TypeVar("_T")


def _redact(item: bytes | LineTooLong, *, in_auth: bool) -> str:
    """A command line for the debug transcript; SASL data never reaches the log."""
    if isinstance(item, LineTooLong):
        return f"<line over {item.limit} octets>"
    if in_auth:
        return "<SASL response redacted>"
    text = item[:200].decode("utf-8", "replace")
    if text[:5].upper() == "AUTH ":
        mechanism = text[5:].split(" ", 1)[0]
        return f"AUTH {mechanism} <redacted>"
    return text


class _Mode(enum.Enum):
    COMMAND = "command"
    DATA = "data"
    CHUNK = "chunk"


class SMTPServerFactory(Factory):
    """Builds one protocol per connection and counts connections per listener/IP."""

    _log = Logger()
    noisy = False  # one log line per listener start/stop is the service's job

    def __init__(
        self,
        config: SMTPListenerConfig | Callable[[], SMTPListenerConfig],
        *,
        authenticator: Authenticator,
        delivery: DeliveryAgent,
        clock: IReactorTime,
        tls: TLSCreator | None = None,
        gate: Callable[[str], Reply | None] | None = None,
    ) -> None:
        # A callable is asked again for each connection, so settings edits apply live.
        self._config = config
        # ``gate(peer_ip)``: IDS block list, bans, rate and IP rules (app.access).
        self._gate = gate
        self.authenticator = authenticator
        self.delivery = delivery
        self.clock = clock
        self.tls = tls
        self._total = 0
        self._per_ip: Counter[str] = Counter()

    @property
    def config(self) -> SMTPListenerConfig:
        """The listener configuration as of now."""
        config = self._config
        return config if isinstance(config, SMTPListenerConfig) else config()

    @override
    def buildProtocol(self, addr: object) -> SMTPServerProtocol:
        return SMTPServerProtocol(
            self.config,
            authenticator=self.authenticator,
            delivery=self.delivery,
            clock=self.clock,
            tls=self.tls,
            admit=self.admit,
            release=self.release,
        )

    def listening_factory(self) -> IProtocolFactory:
        """What to listen with: wrapped in TLS for an implicit-TLS listener (465)."""
        if self.config.implicit_tls:
            if self.tls is None:
                raise ValueError(f"listener {self.config.name}: implicit TLS, no cert")
            return TLSMemoryBIOFactory(self.tls, False, self, clock=self.clock)
        return self

    def admit(self, peer_ip: str) -> Reply | None:
        """Count a new connection; a refusal when over a limit (seed-4 §7.5)."""
        self._total += 1
        self._per_ip[peer_ip] += 1
        config = self.config
        limit, per_ip = config.max_connections, config.max_connections_per_ip
        if (limit and self._total > limit) or (per_ip and self._per_ip[peer_ip] > per_ip):
            return too_many_connections(config.hostname)
        if self._gate is None:
            return None
        try:
            return self._gate(peer_ip)
        except Exception:  # noqa: BLE001  a broken gate must not stop mail: log, admit
            self._log.failure("smtp connection gate failed for {peer}", peer=peer_ip)
            return None

    def release(self, peer_ip: str) -> None:
        self._total -= 1
        self._per_ip[peer_ip] -= 1
        if self._per_ip[peer_ip] <= 0:
            del self._per_ip[peer_ip]

    @property
    def connection_count(self) -> int:
        return self._total


@implementer(IHandshakeListener)
class SMTPServerProtocol(Protocol):
    """One SMTP connection: framing, timeouts, TLS, and the session's actions."""

    _log = Logger()

    def __init__(
        self,
        config: SMTPListenerConfig,
        *,
        authenticator: Authenticator,
        delivery: DeliveryAgent,
        clock: IReactorTime,
        tls: TLSCreator | None = None,
        admit: Callable[[str], Reply | None] = lambda _ip: None,
        release: Callable[[str], None] = lambda _ip: None,
    ) -> None:
        self._config = config
        self._authenticator = authenticator
        self._delivery = delivery
        self._clock = clock
        self._tls = tls
        self._admit = admit
        self._release = release
        self._buffer = LineBuffer(grammar.MAX_LINE)
        self._mode = _Mode.COMMAND
        self._session: SMTPSession | None = None
        self._peer_ip = ""
        self._admitted = False
        self._busy = False
        self._pumping = False
        self._closing = False
        self._lost = False
        self._timer: IDelayedCall | None = None
        # message body state
        self._spool: Spool | None = None
        self._reader: DotBodyReader | None = None
        self._pieces: list[bytes] = []
        self._body_size = 0
        self._max_size = 0
        self._too_big = False
        self._spool_failed = False
        self._chunk_left = 0
        self._chunk_keep = False

    # -------------------------------------------------------------- Twisted

    @override
    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        host = getattr(peer, "host", "")  # IPv4Address / IPv6Address
        self._peer_ip = host if isinstance(host, str) else ""
        self._session = SMTPSession(
            self._config,
            peer_ip=self._peer_ip,
            tls_available=self._tls is not None,
            max_message_size=self._delivery.max_message_size,
            plaintext_equivalent=self._authenticator.plaintext_equivalent_enabled,
        )
        refusal = self._admit(self._peer_ip)
        self._admitted = True
        if refusal is not None:
            self._log.info(
                "smtp {listener} refused connection from {peer}: {reason}",
                listener=self._config.name,
                peer=self._peer_ip,
                reason=refusal.text,
            )
        self._run(self._session.connected(refusal))
        self._restart_timer()

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._closing or self._lost:
            return
        self._buffer.feed(data)
        if not self._busy:
            self._restart_timer()
        self._pump()

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        self._cancel_timer()
        self._drop_spool()
        if self._admitted:
            self._admitted = False
            self._release(self._peer_ip)

    def handshakeCompleted(self) -> None:  # noqa: N802 - IHandshakeListener
        """Record protocol and cipher for the Received: header (RFC 8314 §4.3)."""
        self._note_tls()

    def _note_tls(self) -> None:
        # Also called lazily: behind a ProtocolWrapper (session logs) the TLS layer
        # cannot see that we listen for the handshake.
        if self._session is None or self.transport is None:
            return
        get_handle = getattr(self.transport, "getHandle", None)
        connection = get_handle() if get_handle is not None else None
        version = getattr(connection, "get_protocol_version_name", None)
        cipher = getattr(connection, "get_cipher_name", None)
        if version is None or cipher is None:
            return
        names = (version(), cipher())
        if all(isinstance(name, str) and name for name in names):
            self._session.tls_description = " ".join(names)

    # -------------------------------------------------------------- input loop

    @property
    def session(self) -> SMTPSession:
        if self._session is None:
            raise RuntimeError("not connected")
        return self._session

    def _pump(self) -> None:
        """Handle buffered input until it runs out or a port call is pending."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while not (self._busy or self._closing or self._lost):
                if self._mode is _Mode.COMMAND:
                    if not self._next_command():
                        break
                elif self._mode is _Mode.DATA:
                    if not self._pump_body():
                        break
                elif not self._pump_chunk():
                    break
        finally:
            self._pumping = False

    def _next_command(self) -> bool:
        item = self._buffer.next_line()
        if item is None:
            return False
        session = self.session
        self._log.debug(
            "smtp {listener} {peer} C: {line}",
            listener=self._config.name,
            peer=self._peer_ip,
            line=_redact(item, in_auth=session.state is SMTPState.AUTH),
        )
        try:
            if isinstance(item, LineTooLong):
                actions = session.line_too_long()
            else:
                actions = session.line(item)
        except Exception:  # noqa: BLE001  command boundary
            self._log.failure("smtp session bug; answering 451")
            actions = [Send(TEMP_FAILURE)]
        self._run(actions)
        return True

    def _pump_body(self) -> bool:
        reader = self._reader
        if reader is None:  # pragma: no cover - DATA mode always has a reader
            self._mode = _Mode.COMMAND
            return True
        done = reader.pump(self._buffer)
        self._store(b"".join(self._pieces))
        self._pieces.clear()
        if not done:
            return False
        faults = reader.faults
        fault: BodyFault | None = None
        if faults.bare_cr or faults.bare_lf:
            fault = BodyFault.BARE_LINE_ENDING
        elif self._too_big:
            fault = BodyFault.TOO_BIG
        elif faults.long_line:
            fault = BodyFault.LINE_TOO_LONG
        elif self._spool_failed:
            fault = BodyFault.TEMPORARY
        self._reader = None
        self._mode = _Mode.COMMAND
        if fault is not None:
            self._log.info(
                "smtp {listener} refused message from {peer}: {fault}",
                listener=self._config.name,
                peer=self._peer_ip,
                fault=fault.value,
            )
            self._drop_spool()
        self._restart_timer()
        self._run(self.session.body_received(fault))
        return True

    def _pump_chunk(self) -> bool:
        data = self._buffer.take(self._chunk_left)
        self._chunk_left -= len(data)
        if self._chunk_keep:
            self._store(data)
        if self._chunk_left:
            return False
        self._mode = _Mode.COMMAND
        fault: BodyFault | None = None
        if self._chunk_keep:
            if self._too_big:
                fault = BodyFault.TOO_BIG
            elif self._spool_failed:
                fault = BodyFault.TEMPORARY
            if fault is not None:
                self._drop_spool()
        self._restart_timer()
        self._run(self.session.chunk_received(fault))
        return True

    # -------------------------------------------------------------- actions

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if self._lost:
                return
            self._perform(action)

    def _perform(self, action: Action) -> None:
        session = self.session
        if session.secure and not session.tls_description:
            self._note_tls()
        context = session.context
        if isinstance(action, Send):
            self._write(action.reply)
        elif isinstance(action, Close):
            self._close()
        elif isinstance(action, StartTLSNow):
            self._start_tls()
        elif isinstance(action, CheckSender):
            self._call(
                lambda: self._delivery.check_sender(context, action.envelope),
                lambda _none: session.sender_checked(),
            )
        elif isinstance(action, CheckRecipient):
            self._call(
                lambda: self._delivery.check_recipient(context, action.envelope, action.recipient),
                lambda _none: session.recipient_checked(),
            )
        elif isinstance(action, Lookup):
            self._call(
                lambda: self._delivery.lookup(context, action.argument, action.expand),
                session.looked_up,
            )
        elif isinstance(action, ReceiveData):
            self._begin_body()
            self._reader = DotBodyReader(self._pieces.append, self._config.max_line_length)
            self._mode = _Mode.DATA
            self._restart_timer()
        elif isinstance(action, ReceiveChunk):
            if action.keep and action.first:
                self._begin_body()
            self._chunk_left = action.size
            self._chunk_keep = action.keep
            self._mode = _Mode.CHUNK
            self._restart_timer()
        elif isinstance(action, Deliver):
            self._deliver(action)
        elif isinstance(action, Authenticate):
            self._call(
                lambda: self._authenticator.authenticate(action.credentials, action.context),
                session.authenticated,
            )
        elif isinstance(action, FetchScramKeys):
            self._call(
                lambda: self._authenticator.scram_keys(action.username),
                session.scram_keys,
            )

    def _deliver(self, action: Deliver) -> None:
        spool = self._spool
        self._spool = None
        if spool is None:  # pragma: no cover - a body always has a spool
            self._run(self.session.port_failed(TEMP_FAILURE))
            return
        context = self.session.context

        def failed(failure: Failure) -> Failure:
            spool.discard()
            return failure

        self._call(
            lambda: self._delivery.accept(context, action.envelope, spool).addErrback(failed),
            self.session.delivered,
        )

    def _call(
        self,
        start: Callable[[], Deferred[_T]],
        done: Callable[[_T], list[Action]],
    ) -> None:
        """Run a port call with input paused; its reply goes out before any other."""
        self._busy = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.pauseProducing()  # type: ignore[attr-defined]  # ITCPTransport
        deferred: Deferred[_T] = defer.maybeDeferred(start)

        def succeeded(result: _T) -> None:
            self._finish(lambda: done(result))

        def failed(failure: Failure) -> None:
            self._finish(lambda: self._failure_actions(failure))

        deferred.addCallbacks(succeeded, failed).addErrback(self._bug)

    def _failure_actions(self, failure: Failure) -> list[Action]:
        session = self.session
        if isinstance(failure.value, ReplyError):
            reply = failure.value.reply
            self._log.info(
                "smtp {listener} refused {peer}: {reply}",
                listener=self._config.name,
                peer=self._peer_ip,
                reply=str(reply),
            )
            return session.port_failed(reply)
        if isinstance(failure.value, LoginFailed):
            login = failure.value
            self._log.info(
                "smtp {listener} login failed from {peer}: {reason}",
                listener=self._config.name,
                peer=self._peer_ip,
                reason=login.text,
            )
            return session.authentication_failed(login)
        self._log.failure(
            "smtp {listener} port call failed for {peer}",
            failure,
            listener=self._config.name,
            peer=self._peer_ip,
        )
        return session.port_failed(TEMP_FAILURE)

    def _finish(self, produce: Callable[[], list[Action]]) -> None:
        self._busy = False
        if self._lost:
            return
        try:
            actions = produce()
        except Exception:  # noqa: BLE001  command boundary
            self._log.failure("smtp session bug after a port call; answering 451")
            actions = [Send(TEMP_FAILURE)]
        self._run(actions)
        if self._stopped():
            return
        if not self._busy:
            if self.transport is not None:
                self.transport.resumeProducing()  # type: ignore[attr-defined]  # ITCPTransport
            self._restart_timer()
            self._pump()

    def _stopped(self) -> bool:
        return self._lost or self._closing

    def _bug(self, failure: Failure) -> None:
        self._log.failure("smtp adapter bug", failure)
        self._busy = False
        if not self._lost:
            self._write(TEMP_FAILURE)

    # -------------------------------------------------------------- output

    def _write(self, reply: Reply) -> None:
        if self.transport is None or self._lost:
            return
        if reply.code >= 400:
            self._log.info(
                "smtp {listener} reply to {peer}: {reply}",
                listener=self._config.name,
                peer=self._peer_ip,
                reply=str(reply),
            )
        self.transport.write(("\r\n".join(reply.lines()) + "\r\n").encode("utf-8"))

    def _close(self) -> None:
        self._closing = True
        self._cancel_timer()
        self._drop_spool()
        if self.transport is not None:
            self.transport.loseConnection()

    def _start_tls(self) -> None:
        # RFC 3207 §6: plaintext pipelined after STARTTLS must not survive the
        # handshake (the command-injection attack), so the buffer is emptied.
        self._buffer.clear()
        transport = self.transport
        if self._tls is None or not ITLSTransport.providedBy(transport):
            self._log.error("smtp STARTTLS without a TLS-capable transport")
            self._close()
            return
        ITLSTransport(transport).startTLS(self._tls)

    # -------------------------------------------------------------- body

    def _begin_body(self) -> None:
        self._drop_spool()  # a body left by RSET during BDAT is never reused
        self._body_size = 0
        self._too_big = False
        self._spool_failed = False
        self._pieces.clear()
        self._max_size = self.session.max_size()
        try:
            self._spool = self._delivery.open_spool()
        except Exception:  # noqa: BLE001  spool failures become 451 at the end
            self._log.failure("smtp could not open a spool")
            self._spool = None
            self._spool_failed = True

    def _store(self, data: bytes) -> None:
        if not data:
            return
        self._body_size += len(data)
        if self._max_size and self._body_size > self._max_size:
            if not self._too_big:
                self._too_big = True
                self._drop_spool()
            return
        if self._spool is None or self._spool_failed:
            return
        try:
            self._spool.write(data)
        except Exception:  # noqa: BLE001  a full disk is our fault: 451
            self._log.failure("smtp spool write failed")
            self._spool_failed = True
            self._drop_spool()

    def _drop_spool(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            try:
                spool.discard()
            except Exception:  # noqa: BLE001  cleanup must not break the session
                self._log.failure("smtp spool discard failed")

    # -------------------------------------------------------------- timers

    def _restart_timer(self) -> None:
        self._cancel_timer()
        if self._closing or self._lost or self._busy:
            return
        seconds = (
            self._config.command_timeout
            if self._mode is _Mode.COMMAND
            else self._config.data_timeout
        )
        if seconds:
            self._timer = self._clock.callLater(seconds, self._timed_out)

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _timed_out(self) -> None:
        self._timer = None
        if self._busy or self._closing or self._lost:
            return
        self._log.info(
            "smtp {listener} timeout for {peer}",
            listener=self._config.name,
            peer=self._peer_ip,
        )
        self._drop_spool()
        self._run(self.session.timed_out())
