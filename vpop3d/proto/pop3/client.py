"""A POP3 client for the Mail Collectors (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS).

Two layers: a pure core (:func:`parse_status`, :class:`MultiLineReader`,
:func:`greeting_timestamp`, :func:`parse_listing`) and :class:`POP3Client`, a thin
Twisted line protocol with one command in flight. Every command has a timeout; a
``-ERR`` reply raises :class:`POP3ServerError`, whose text is the collector's
"Last connection result" (seed-3 §2.4, password masked).

Multi-line bodies (``RETR``/``TOP``) are streamed to a sink line by line, dot-unstuffed
(RFC 1939 §3), so a large message never sits in memory.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from vpop3d.core.saslclient import apop_digest, cram_md5_response


def _abort(transport: object) -> None:
    """Drop the connection now (ITCPTransport.abortConnection), if there is one."""
    abort = getattr(transport, "abortConnection", None)
    if callable(abort):
        abort()


__all__ = [
    "MultiLineReader",
    "POP3Client",
    "POP3ConnectionLost",
    "POP3Error",
    "POP3ServerError",
    "POP3Timeout",
    "TLSMode",
    "greeting_timestamp",
    "parse_listing",
    "parse_status",
]

_MAX_LINE = 64 * 1024  # RFC 1939 §3 says 512 octets for responses; bodies can be longer
_TIMESTAMP = re.compile(rb"<[^<>\s]*@[^<>\s]*>")


class TLSMode(Enum):
    """Session Encryption (seed-3 §3.1)."""

    NONE = "none"
    IMPLICIT = "ssl"  # TLS from the first byte (POP3S, port 995)
    REQUIRED = "stls"  # STLS or refuse to continue
    OPTIONAL = "stls-optional"  # STLS if CAPA lists it


class POP3Error(Exception):
    """Any failure of a POP3 session; ``str()`` is the Last-result text."""


@dataclass
class POP3ServerError(POP3Error):
    """The server said ``-ERR`` (or something that is not ``+OK``)."""

    command: str  # as shown to the admin: passwords masked
    line: str

    def __str__(self) -> str:
        # seed-3 §2.4: Error from remote server on "PASS *****" -> -ERR ...
        return f'Error from remote server on "{self.command}" -> {self.line}'


class POP3Timeout(POP3Error):
    """No reply within the timeout; the connection is aborted."""


class POP3ConnectionLost(POP3Error):
    """The connection closed before the reply was complete."""


def parse_status(line: bytes) -> tuple[bool, str]:
    """Split a status line into (is +OK, text after the indicator) — RFC 1939 §3."""
    text = line.decode("utf-8", "replace")
    if text.startswith("+OK"):
        return True, text[3:].lstrip()
    return False, text


def greeting_timestamp(greeting: bytes) -> bytes | None:
    """The APOP timestamp ``<...@...>`` in the greeting, if any (RFC 1939 §7)."""
    match = _TIMESTAMP.search(greeting)
    return match.group(0) if match else None


def parse_listing(lines: list[bytes]) -> list[tuple[int, str]]:
    """``n value`` lines of a UIDL or LIST answer (RFC 1939 §7, §5); junk skipped."""
    out: list[tuple[int, str]] = []
    for raw in lines:
        parts = raw.decode("utf-8", "replace").split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1].strip()))
    return out


@dataclass
class MultiLineReader:
    """Turns the lines of a multi-line reply into content lines (RFC 1939 §3).

    ``feed`` returns False once the terminating ``.`` line was seen. Each content
    line goes to ``sink`` with CRLF restored and one leading dot removed.
    """

    sink: Callable[[bytes], None]
    done: bool = field(default=False, init=False)

    def feed(self, line: bytes) -> bool:
        if line == b".":
            self.done = True
            return False
        if line.startswith(b"."):
            line = line[1:]
        self.sink(line + b"\r\n")
        return True


@dataclass
class _Pending:
    display: str
    multiline: bool
    sink: Callable[[bytes], None] | None
    deferred: Deferred[str]
    status: str | None = None
    reader: MultiLineReader | None = None


class POP3Client(Protocol):
    """One POP3 session, driven by ``await`` calls on its command methods."""

    def __init__(self, clock: IReactorTime, timeout: float = 60.0) -> None:
        self._clock = clock
        self.timeout = timeout
        self._buffer = b""
        self._pending: _Pending | None = None
        self._timer: IDelayedCall | None = None
        self._lost: Failure | None = None
        self.greeting_line = ""
        self.timestamp: bytes | None = None
        self.greeting: Deferred[str] = Deferred()
        self._pending = _Pending("(greeting)", False, None, self.greeting)
        self.secure = False

    # ------------------------------------------------------------ transport side

    def connectionMade(self) -> None:
        self._arm()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while True:
            cut = self._buffer.find(b"\n")
            if cut < 0:
                if len(self._buffer) > _MAX_LINE:
                    self._fail(POP3Error("line too long from server"))
                    _abort(self.transport)
                return
            line, self._buffer = self._buffer[:cut], self._buffer[cut + 1 :]
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._lost = reason
        self._fail(POP3ConnectionLost(f"connection lost: {reason.getErrorMessage()}"))

    # ------------------------------------------------------------ reply handling

    def _line(self, line: bytes) -> None:
        pending = self._pending
        if pending is None:
            return  # unsolicited data: ignore
        self._arm()
        if pending.reader is not None:
            if not pending.reader.feed(line):
                self._finish(pending.status or "")
            return
        ok, text = parse_status(line)
        if pending.display == "(greeting)":
            self.greeting_line = line.decode("utf-8", "replace")
            self.timestamp = greeting_timestamp(line)
        if not ok:
            if line.startswith(b"+ "):  # SASL continuation (RFC 5034 §4)
                self._finish(text[2:] if text.startswith("+ ") else text, continuation=True)
                return
            self._fail(POP3ServerError(pending.display, text))
            return
        if pending.multiline:
            pending.status = text
            pending.reader = MultiLineReader(pending.sink or (lambda _data: None))
            return
        self._finish(text)

    def _finish(self, text: str, *, continuation: bool = False) -> None:
        pending, self._pending = self._pending, None
        self._disarm()
        if pending is not None:
            pending.deferred.callback(("+ " + text) if continuation else text)

    def _fail(self, error: POP3Error) -> None:
        pending, self._pending = self._pending, None
        self._disarm()
        if pending is not None:
            pending.deferred.errback(error)

    def _arm(self) -> None:
        self._disarm()
        if self._pending is not None:
            self._timer = self._clock.callLater(self.timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        what = self._pending.display if self._pending else "?"
        self._fail(POP3Timeout(f'timeout waiting for reply to "{what}"'))
        _abort(self.transport)

    # ------------------------------------------------------------ commands

    def _send(
        self,
        line: str,
        *,
        display: str | None = None,
        multiline: bool = False,
        sink: Callable[[bytes], None] | None = None,
    ) -> Deferred[str]:
        if self._pending is not None:
            raise POP3Error("a command is already in flight")
        deferred: Deferred[str] = Deferred()
        if self._lost is not None:
            deferred.errback(POP3ConnectionLost("connection lost"))
            return deferred
        self._pending = _Pending(display or line, multiline, sink, deferred)
        self.transport.write(line.encode("utf-8") + b"\r\n")  # type: ignore[union-attr]
        self._arm()
        return deferred

    async def capa(self) -> list[str]:
        """RFC 2449 §5; an ``-ERR`` means no capabilities are known."""
        lines: list[bytes] = []
        try:
            await self._send("CAPA", multiline=True, sink=lines.append)
        except POP3ServerError:
            return []
        return [raw.rstrip(b"\r\n").decode("utf-8", "replace") for raw in lines]

    async def stls(self, options: object) -> None:
        """RFC 2595 §4: STLS, then TLS on the same connection."""
        await self._send("STLS")
        self.transport.startTLS(options)  # type: ignore[union-attr]
        self.secure = True

    async def login_user(self, username: str, password: str) -> None:
        """USER/PASS (RFC 1939 §7); the password never appears in errors or logs."""
        await self._send(f"USER {username}")
        await self._send(f"PASS {password}", display="PASS *****")

    async def login_apop(self, username: str, password: str) -> None:
        if self.timestamp is None:
            raise POP3Error("server greeting has no APOP timestamp")
        digest = apop_digest(self.timestamp, password)
        await self._send(f"APOP {username} {digest}", display=f"APOP {username} *****")

    async def login_cram_md5(self, username: str, password: str) -> None:
        """RFC 5034 AUTH with the RFC 2195 mechanism."""
        reply = await self._send("AUTH CRAM-MD5")
        if not reply.startswith("+ "):
            raise POP3Error("server did not send a CRAM-MD5 challenge")
        challenge = base64.b64decode(reply[2:].strip() or b"")
        answer = base64.b64encode(cram_md5_response(username, password, challenge))
        await self._send(answer.decode("ascii"), display="(CRAM-MD5 response)")

    async def stat(self) -> tuple[int, int]:
        text = await self._send("STAT")
        parts = text.split()
        return int(parts[0]), int(parts[1])

    async def uidl(self) -> list[tuple[int, str]]:
        lines: list[bytes] = []
        await self._send("UIDL", multiline=True, sink=lines.append)
        return parse_listing([raw.rstrip(b"\r\n") for raw in lines])

    async def list_sizes(self) -> dict[int, int]:
        lines: list[bytes] = []
        await self._send("LIST", multiline=True, sink=lines.append)
        out: dict[int, int] = {}
        for number, value in parse_listing([raw.rstrip(b"\r\n") for raw in lines]):
            size = value.split()[0] if value.split() else ""
            if size.isdigit():
                out[number] = int(size)
        return out

    async def top(self, number: int, lines: int = 0) -> bytes:
        """The header block (and ``lines`` body lines) of message ``number``."""
        chunks: list[bytes] = []
        await self._send(f"TOP {number} {lines}", multiline=True, sink=chunks.append)
        return b"".join(chunks)

    async def retr(self, number: int, sink: Callable[[bytes], None]) -> None:
        """Stream message ``number`` to ``sink``, CRLF lines, dot-unstuffed."""
        await self._send(f"RETR {number}", multiline=True, sink=sink)

    async def dele(self, number: int) -> None:
        await self._send(f"DELE {number}")

    async def quit(self) -> None:
        """QUIT makes the server commit deletions (RFC 1939 §6)."""
        try:
            await self._send("QUIT")
        finally:
            if self.transport is not None:
                self.transport.loseConnection()

    def abort(self) -> None:
        if self.transport is not None:
            _abort(self.transport)
