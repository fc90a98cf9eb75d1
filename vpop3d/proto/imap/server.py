"""Twisted adapter for the IMAP session: framing, literals, timers and STARTTLS.

Framing follows RFC 3501 §2.2 and RFC 7888: a command is a line, possibly ending
in a literal announcement ``{n}`` (synchronizing: we answer ``+ Ready`` before the
client sends the octets) or ``{n+}`` (LITERAL+: the octets follow at once). A
literal over the limit is refused *before* reading it. One command runs at a time;
lines that arrive meanwhile stay buffered, except the continuation lines the running
command asks for (AUTHENTICATE responses, IDLE's ``DONE``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from vpop3d.ports import Authenticator
from vpop3d.proto.imap.grammar import ParseError, literal_at_end, parse_command, tag_of
from vpop3d.proto.imap.mailbox import MailStore
from vpop3d.proto.imap.session import IMAPConfig, IMAPSession, Outcome, State


class _DelayedCall(TypingProtocol):
    def active(self) -> bool: ...
    def cancel(self) -> None: ...


class Clock(TypingProtocol):
    """What the adapter needs of ``Clock`` (the reactor or ``task.Clock``)."""

    def callLater(  # noqa: N802 - Twisted's name
        self, delay: float, callable: Callable[..., object], /, *args: object
    ) -> _DelayedCall: ...


class _Transport(TypingProtocol):
    """The parts of ``ITCPTransport``/``ITLSTransport``/``IProducer`` we use."""

    def write(self, data: bytes, /) -> None: ...
    def loseConnection(self) -> None: ...  # noqa: N802 - Twisted's name
    def getPeer(self) -> object: ...  # noqa: N802 - Twisted's name
    def pauseProducing(self) -> None: ...  # noqa: N802 - Twisted's name
    def resumeProducing(self) -> None: ...  # noqa: N802 - Twisted's name
    def startTLS(self, context: object, /) -> None: ...  # noqa: N802 - Twisted's name
    def registerProducer(self, producer: object, streaming: bool, /) -> None: ...  # noqa: N802


LITERAL_MINUS_MAX = 4096  # RFC 7888 §4: the largest non-synchronizing literal with LITERAL-
_PAUSE_BUFFER = 256 * 1024  # stop reading when this much waits behind a running command


@dataclass(frozen=True, slots=True)
class IMAPLimits:
    """Resource limits of one connection."""

    max_line: int = 64 * 1024  # octets of one line, literals excluded
    max_literal: int = 64 * 1024  # literal octets in any command but APPEND
    max_command: int = 256 * 1024  # all octets of a non-APPEND command
    autologout: float = 30 * 60  # RFC 3501 §5.4: at least 30 minutes
    login_timeout: float = 5 * 60  # before authentication (RFC 3501 §5.4 allows less)
    idle_keepalive: float = 10 * 60  # "* OK Still here" during IDLE (< 29 min, RFC 2177)
    max_logins_per_user: int = 20  # spec seed-4 §8.3 "Concurrent logins for a User"
    max_connections_per_ip: int = 1002  # spec seed-4 §8.3 "... from an IP address"
    max_user_fetches: int = 5  # spec seed-4 §8.3 "Concurrent FETCHes for a User"
    max_server_fetches: int = 50  # "... for this server"
    fetch_wait: float = 40.0  # seconds a FETCH waits for a slot
    max_user_searches: int = 2  # "Concurrent SEARCHes for a User"
    search_wait: float = 30.0


class SlotPool:
    """At most ``limit`` holders; others queue for up to a timeout (spec seed-4 §8.3)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._queue: list[tuple[Deferred[bool], _DelayedCall]] = []

    def acquire(self, clock: Clock, timeout: float) -> Deferred[bool]:
        """Fires True with a slot held, or False when none freed up in time."""
        waiter: Deferred[bool] = Deferred()
        if self.active < self.limit:
            self.active += 1
            waiter.callback(True)
            return waiter

        def give_up() -> None:
            self._queue[:] = [entry for entry in self._queue if entry[0] is not waiter]
            waiter.callback(False)

        self._queue.append((waiter, clock.callLater(timeout, give_up)))
        return waiter

    def release(self) -> None:
        if self._queue:
            waiter, timer = self._queue.pop(0)
            timer.cancel()
            waiter.callback(True)  # the slot passes straight to the next in line
        else:
            self.active -= 1


@implementer(IPushProducer)
class _OutputGate:
    """Registered with the transport: learns when its write buffer is full."""

    def __init__(self) -> None:
        self.paused = False
        self._waiters: list[Deferred[None]] = []

    def wait(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if self.paused:
            self._waiters.append(waiter)
        else:
            waiter.callback(None)
        return waiter

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def stopProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.resumeProducing()


class ConnectionCounter:
    """Live connections per peer address and logins per user, shared by listeners."""

    def __init__(self) -> None:
        self.by_ip: dict[str, int] = {}
        self.by_user: dict[int, int] = {}
        self.pools: dict[tuple[str, int | None], SlotPool] = {}

    def pool(self, kind: str, user_id: int | None, limit: int) -> SlotPool:
        key = (kind, user_id)
        if key not in self.pools:
            self.pools[key] = SlotPool(limit)
        return self.pools[key]

    @staticmethod
    def _change(table: dict[Any, int], key: object, delta: int) -> None:
        value = table.get(key, 0) + delta
        if value > 0:
            table[key] = value
        else:
            table.pop(key, None)


class IMAPServerProtocol(Protocol):
    """One IMAP connection."""

    _log = Logger()

    def __init__(
        self,
        config: IMAPConfig,
        store: MailStore,
        authenticator: Authenticator,
        clock: Clock,
        limits: IMAPLimits,
        tls_context: object | None = None,
        implicit_tls: bool = False,
        counter: ConnectionCounter | None = None,
        gate: Callable[[str], bool] | None = None,
    ) -> None:
        self._config = config
        self._gate_check = gate
        self._counter = counter or ConnectionCounter()
        self._gate = _OutputGate()
        self._counted_ip = False
        self._counted_user: int | None = None
        self._store = store
        self._authenticator = authenticator
        self._clock = clock
        self._limits = limits
        self._tls_context = tls_context
        self._secure = implicit_tls
        self._peer_ip = ""
        self.session = IMAPSession(config, store, authenticator, self)
        self._buffer = b""
        self._parts: list[bytes] = []  # the command being assembled
        self._parts_size = 0
        self._literal_left = 0
        self._busy = False
        self._line_waiter: Deferred[bytes] | None = None
        self._processing = False
        self._again = False
        self._closed = False
        self._paused = False
        self._timer: _DelayedCall | None = None
        self._keepalive: _DelayedCall | None = None
        # RFC 4978 §3: raw DEFLATE (no zlib header) once COMPRESS has succeeded.
        self._deflate: zlib._Compress | None = None
        self._inflate: zlib._Decompress | None = None

    # ------------------------------------------------------------- Channel for the session

    @property
    def _wire(self) -> _Transport:
        return cast(_Transport, self.transport)

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            if self._deflate is not None:
                # A sync flush per write: the client can read each response at once.
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self._wire.write(data)

    def read_line(self) -> Deferred[bytes]:
        waiter: Deferred[bytes] = Deferred()
        self._line_waiter = waiter
        if self.session.idling:
            self._schedule_keepalive()
        self._process()
        return waiter

    def drained(self) -> Deferred[None]:
        return self._gate.wait()

    def acquire(self, kind: str) -> Deferred[Callable[[], None] | None]:
        return Deferred.fromCoroutine(self._acquire(kind))

    async def _acquire(self, kind: str) -> Callable[[], None] | None:
        """Hold a FETCH or SEARCH slot for this user (and the server, for FETCH)."""
        limits, user = self._limits, self._counted_user
        if kind == "fetch":
            wanted = [
                (
                    self._counter.pool("user-fetch", user, limits.max_user_fetches),
                    limits.fetch_wait,
                ),
                (
                    self._counter.pool("server-fetch", None, limits.max_server_fetches),
                    limits.fetch_wait,
                ),
            ]
        else:
            wanted = [
                (self._counter.pool("search", user, limits.max_user_searches), limits.search_wait)
            ]
        held: list[SlotPool] = []
        for pool, wait in wanted:
            if not await pool.acquire(self._clock, wait):
                for taken in held:
                    taken.release()
                return None
            held.append(pool)

        def release() -> None:
            for taken in held:
                taken.release()

        return release

    def register_login(self, user_id: int) -> bool:
        """Count a login; False when the user already has too many sessions."""
        counter = self._counter
        if counter.by_user.get(user_id, 0) >= self._limits.max_logins_per_user:
            return False
        counter._change(counter.by_user, user_id, 1)
        self._counted_user = user_id
        return True

    @property
    def secure(self) -> bool:
        return self._secure

    @property
    def peer_ip(self) -> str:
        return self._peer_ip

    # ------------------------------------------------------------- Twisted events

    @override
    def connectionMade(self) -> None:
        peer = self._wire.getPeer()
        self._peer_ip = str(getattr(peer, "host", ""))
        counter = self._counter
        if self._gate_check is not None and not self._gate_check(self._peer_ip):
            # Spec seed-4 §8.2: the manual's text for a refused address.
            self._wire.write(b"* BYE VPOP3 IMAP4rev1 Server access not allowed!\r\n")
            self._close()
            return
        if counter.by_ip.get(self._peer_ip, 0) >= self._limits.max_connections_per_ip:
            # Spec seed-4 §8.3: the manual's text for this limit.
            self._wire.write(b"* BYE Too many connections from this address!\r\n")
            self._close()
            return
        counter._change(counter.by_ip, self._peer_ip, 1)
        self._counted_ip = True
        self._wire.registerProducer(self._gate, True)
        self._wire.write(self.session.greeting())
        self._reset_timer()

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._closed:
            return
        self._reset_timer()
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error:
                self._inflate = None
                self._fatal("Invalid compressed data")
                return
        self._buffer += data
        self._process()

    @override
    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closed = True
        for call in (self._timer, self._keepalive):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._keepalive = None
        if self._counted_ip:
            self._counter._change(self._counter.by_ip, self._peer_ip, -1)
            self._counted_ip = False
        if self._counted_user is not None:
            self._counter._change(self._counter.by_user, self._counted_user, -1)
            self._counted_user = None
        self.session.connection_lost()
        self._gate.stopProducing()
        waiter, self._line_waiter = self._line_waiter, None
        if waiter is not None:
            waiter.errback(reason if reason is not None else Failure(ConnectionDone()))

    # ------------------------------------------------------------- framing

    def _process(self) -> None:
        if self._processing:
            self._again = True
            return
        self._processing = True
        try:
            while not self._closed:
                self._again = False
                if not self._step() and not self._again:
                    break
        finally:
            self._processing = False
        self._flow_control()

    def _step(self) -> bool:
        """Consume one unit of input; False when nothing more can be done now."""
        if self._literal_left:
            if not self._buffer:
                return False
            chunk = self._buffer[: self._literal_left]
            self._buffer = self._buffer[len(chunk) :]
            self._parts.append(chunk)
            self._parts_size += len(chunk)
            self._literal_left -= len(chunk)
            return True
        if self._busy and self._line_waiter is None:
            return False
        end = self._buffer.find(b"\r\n")
        bare = self._buffer.find(b"\n")
        if bare != -1 and (end == -1 or bare < end):
            end, skip = bare, 1  # tolerate bare LF line ends from sloppy clients
        else:
            skip = 2
        if end == -1:
            if len(self._buffer) > self._limits.max_line:
                self._fatal("Line too long")
            return False
        line = self._buffer[:end]
        self._buffer = self._buffer[end + skip :]
        if len(line) > self._limits.max_line:
            self._fatal("Line too long")
            return False
        if self._line_waiter is not None and not self._parts:
            waiter, self._line_waiter = self._line_waiter, None
            self._cancel_keepalive()
            waiter.callback(line)
            return True
        self._command_line(line)
        return True

    def _command_line(self, line: bytes) -> None:
        if not self._parts and not line.strip():
            return  # RFC 3501 is silent; empty lines between commands are ignored
        self._parts.append(line)
        self._parts_size += len(line)
        spec = literal_at_end(line)
        if spec is None:
            data = b"".join(self._parts)
            self._parts = []
            self._parts_size = 0
            self._dispatch(data)
            return
        first = self._parts[0]
        tag = tag_of(first) or "*"
        is_append = _verb(first) == "APPEND"
        limit = self._config.append_limit if is_append else self._limits.max_literal
        total = self._parts_size + spec.size
        too_big = spec.size > limit or (not is_append and total > self._limits.max_command)
        if not spec.synchronizing and not self._config.literal_plus:
            too_big = too_big or spec.size > LITERAL_MINUS_MAX  # RFC 7888 §4
        if too_big:
            self._parts = []
            self._parts_size = 0
            code = "[TOOBIG] " if is_append else ""
            if spec.synchronizing:
                # The client waits for "+": refusing now means it never sends the octets.
                self.write(f"{tag} NO {code}Literal too large\r\n".encode())
            else:
                # RFC 7888 §4: the octets are already on their way; we cannot resync.
                self.write(f"{tag} BAD {code}Literal too large\r\n".encode())
                self._fatal("Literal too large")
            return
        self._parts.append(b"\r\n")
        self._literal_left = spec.size
        if spec.synchronizing:
            self.write(b"+ Ready for literal data\r\n")

    def _dispatch(self, data: bytes) -> None:
        try:
            tagged = parse_command(data, utf8=self.session.utf8)
        except ParseError as err:
            tag = err.tag or "*"
            self.write(f"{tag} BAD {err.text}\r\n".encode())
            return
        self._busy = True
        done = Deferred.fromCoroutine(self.session.execute(tagged))
        done.addCallback(self._finished)
        done.addErrback(self._crashed)

    def _finished(self, outcome: Outcome) -> None:
        self._busy = False
        self._cancel_keepalive()
        if outcome is Outcome.CLOSE:
            self._close()
            return
        if outcome is Outcome.STARTTLS:
            # RFC 3501 §6.2.1 / RFC 2595 §3.1: bytes sent before the handshake are dropped.
            self._buffer = b""
            self._wire.startTLS(self._tls_context)
            self._secure = True
        elif outcome is Outcome.COMPRESS:
            # A 4 KiB window and memLevel 5 cost ~45 KiB per connection instead of
            # ~270 KiB (idle IDLE sessions add up); any inflater reads a smaller window.
            # The client may use the full 32 KiB window, so inflate accepts it.
            self._deflate = zlib.compressobj(6, zlib.DEFLATED, -12, 5)
            self._inflate = zlib.decompressobj(wbits=-15)
        self._reset_timer()
        self._process()

    def _crashed(self, failure: Failure) -> None:
        self._log.failure("IMAP adapter failure", failure)
        self._busy = False
        self._close()

    def _flow_control(self) -> None:
        if self.transport is None or self._closed:
            return
        waiting = self._busy and len(self._buffer) > _PAUSE_BUFFER
        if waiting and not self._paused:
            self._paused = True
            self._wire.pauseProducing()
        elif not waiting and self._paused:
            self._paused = False
            self._wire.resumeProducing()

    def _fatal(self, text: str) -> None:
        self.write(f"* BYE {text}\r\n".encode())
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer = b""
        if self.transport is not None:
            self._wire.loseConnection()

    # ------------------------------------------------------------- timers

    def _reset_timer(self) -> None:
        if self._closed:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        authenticated = self.session.state in (State.AUTHENTICATED, State.SELECTED)
        delay = self._limits.autologout if authenticated else self._limits.login_timeout
        self._timer = self._clock.callLater(delay, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        self._fatal("Autologout; idle for too long")

    def _schedule_keepalive(self) -> None:
        self._cancel_keepalive()
        self._keepalive = self._clock.callLater(self._limits.idle_keepalive, self._ping)

    def _cancel_keepalive(self) -> None:
        if self._keepalive is not None and self._keepalive.active():
            self._keepalive.cancel()
        self._keepalive = None

    def _ping(self) -> None:
        self._keepalive = None
        if self.session.idling:
            self.write(b"* OK Still here\r\n")
            self._schedule_keepalive()


def _verb(line: bytes) -> str:
    parts = line.split(b" ", 3)
    if len(parts) < 2:
        return ""
    verb = parts[1].upper()
    if verb == b"UID" and len(parts) > 2:
        verb = parts[2].upper()
    return verb.decode("ascii", "replace")


class IMAPServerFactory(Factory):
    """Builds :class:`IMAPServerProtocol` with its dependencies.

    ``config`` may be a callable, read for each connection so admin changes apply
    to new sessions without a restart.
    """

    def __init__(
        self,
        config: IMAPConfig | Callable[[], IMAPConfig],
        store: MailStore,
        authenticator: Authenticator,
        clock: Clock,
        limits: IMAPLimits | None = None,
        tls_context: object | None = None,
        implicit_tls: bool = False,
        counter: ConnectionCounter | None = None,
        gate: Callable[[str], bool] | None = None,
    ) -> None:
        self.config = config
        self.gate = gate  # peer IP -> admitted? (IP access restrictions, IDS bans)
        self.counter = counter or ConnectionCounter()
        self.store = store
        self.authenticator = authenticator
        self.clock = clock
        self.limits = limits or IMAPLimits()
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls

    @override
    def buildProtocol(self, addr: object) -> IMAPServerProtocol:
        config = self.config() if callable(self.config) else self.config
        protocol = IMAPServerProtocol(
            config,
            self.store,
            self.authenticator,
            self.clock,
            self.limits,
            self.tls_context,
            self.implicit_tls,
            self.counter,
            self.gate,
        )
        protocol.factory = self
        return protocol
