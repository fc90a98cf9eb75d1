"""ODMR / ATRN client for the "ODMR (ATRN)" collector (RFC 2645, seed-1 §11.2).

Connect to the ISP's ODMR service (port 366), EHLO, check that ATRN is offered,
AUTH (required by RFC 2645 §4: CRAM-MD5 when offered, else PLAIN), then
``ATRN domain1,domain2``. On ``250`` the roles swap on the same TCP connection:
our SMTP server protocol takes the transport, sends its ``220`` greeting and
receives the ISP's mail through normal local delivery. ``453`` means no mail
waiting (RFC 2645 §5.2.3): QUIT.

Only plain TCP is supported for the turn-around (no STARTTLS on the ODMR link yet).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IProtocol, IProtocolFactory
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from vpop3d.app.etrn import parse_host_port
from vpop3d.core.saslclient import cram_md5_response, plain_response

__all__ = ["ATRNError", "ATRNSession", "run_atrn"]

ODMR_PORT = 366  # RFC 2645 §3


class ATRNError(Exception):
    """The ODMR exchange failed; ``str()`` is the Last-result text."""


def _swap(transport: Any, protocol: IProtocol) -> None:
    """Hand a live TCP transport to another protocol (the reactor reads ``.protocol``)."""
    transport.protocol = protocol
    protocol.makeConnection(transport)


class ATRNSession(Protocol):
    """The client half; ``done`` fires with the result text when the link closes."""

    def __init__(
        self,
        clock: Any,
        *,
        helo: str,
        username: str,
        password: str,
        domains: str,
        smtp_factory: IProtocolFactory,
        timeout: float = 60.0,
        swap: Callable[[Any, IProtocol], None] = _swap,
    ) -> None:
        self._clock = clock
        self._helo = helo
        self._username = username
        self._password = password
        self._domains = ",".join(
            d.strip() for d in domains.replace(";", ",").split(",") if d.strip()
        )
        self._factory = smtp_factory
        self._timeout = timeout
        self._swap = swap
        self._buffer = b""
        self._lines: list[str] = []
        self._step = "greeting"
        self._extensions: list[str] = []
        self._timer: IDelayedCall | None = None
        self._result = ""
        self.done: Deferred[str] = Deferred()

    def connectionMade(self) -> None:
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._timer = self._clock.callLater(self._timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        self._end(ATRNError(f"timeout waiting for the reply to {self._step}"))
        abort = getattr(self.transport, "abortConnection", None)
        if callable(abort):
            abort()

    def _end(self, outcome: str | Exception) -> None:
        self._disarm()
        if self.done.called:
            return
        if isinstance(outcome, Exception):
            self.done.errback(outcome)
        else:
            self.done.callback(outcome)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer and self._step != "reversed":
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            self._lines.append(line)
            if len(line) >= 4 and line[3] == "-":
                continue  # RFC 5321 §4.2.1 multi-line reply
            lines, self._lines = self._lines, []
            code = int(line[:3]) if line[:3].isdigit() else 0
            self._reply(code, lines)

    def _send(self, step: str, line: str) -> None:
        self._step = step
        self.transport.write(line.encode("utf-8") + b"\r\n")  # type: ignore[union-attr]
        self._arm()

    def _fail(self, command: str, lines: list[str]) -> None:
        self._end(ATRNError(f'Error from remote server on "{command}" -> {" / ".join(lines)}'))
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _reply(self, code: int, lines: list[str]) -> None:
        step = self._step
        if step == "greeting":
            if code != 220:
                return self._fail("(connect)", lines)
            return self._send("EHLO", f"EHLO {self._helo}")
        if step == "EHLO":
            if code != 250:
                return self._fail(f"EHLO {self._helo}", lines)
            self._extensions = [line[4:].strip().upper() for line in lines[1:]]
            if not any(ext.split()[:1] == ["ATRN"] for ext in self._extensions if ext):
                return self._fail(f"EHLO {self._helo}", ["server does not offer ATRN"])
            return self._auth()
        if step == "AUTH CRAM-MD5":
            if code != 334:
                return self._fail(step, lines)
            challenge = base64.b64decode(lines[-1][4:].strip() or "")
            answer = base64.b64encode(cram_md5_response(self._username, self._password, challenge))
            return self._send("AUTH response", answer.decode("ascii"))
        if step in ("AUTH PLAIN", "AUTH response"):
            if code != 235:
                return self._fail("AUTH *****", lines)
            return self._send("ATRN", f"ATRN {self._domains}")
        if step == "ATRN":
            if code == 453:  # RFC 2645 §5.2.3: no mail waiting
                self._result = "OK: no mail waiting (" + lines[-1] + ")"
                return self._send("QUIT", "QUIT")
            if code != 250:
                return self._fail(f"ATRN {self._domains}", lines)
            return self._reverse()
        if step == "QUIT":
            self.transport.loseConnection()  # type: ignore[union-attr]
            self._end(self._result)
        return None

    def _auth(self) -> None:
        methods = set()
        for ext in self._extensions:
            words = ext.split()
            if words and words[0] == "AUTH":
                methods.update(words[1:])
        if "CRAM-MD5" in methods:
            return self._send("AUTH CRAM-MD5", "AUTH CRAM-MD5")
        token = base64.b64encode(plain_response(self._username, self._password)).decode("ascii")
        return self._send("AUTH PLAIN", f"AUTH PLAIN {token}")

    def _reverse(self) -> None:
        """RFC 2645 §5.3: we are now the SMTP server on this connection."""
        self._step = "reversed"
        self._disarm()
        assert self.transport is not None
        server = self._factory.buildProtocol(self.transport.getPeer())
        if server is None:
            self._end(ATRNError("cannot start the SMTP server for the reversed connection"))
            self.transport.loseConnection()
            return
        self._result = f"OK: ATRN {self._domains}: connection reversed, mail received"
        original_lost = server.connectionLost

        def lost(reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
            original_lost(reason)
            self._end(self._result)

        server.connectionLost = lost  # type: ignore[method-assign]
        self._swap(self.transport, server)
        leftover, self._buffer = self._buffer, b""
        if leftover:
            server.dataReceived(leftover)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._step == "QUIT" and self._result:
            self._end(self._result)
        elif self._step != "reversed":
            self._end(ATRNError(f"connection lost during {self._step}"))


async def run_atrn(
    reactor: Any,
    server: str,
    *,
    helo: str,
    username: str,
    password: str,
    domains: str,
    smtp_factory: IProtocolFactory,
    timeout: float = 60.0,
) -> str:
    """One ODMR session; returns the result text, raises :class:`ATRNError`."""
    if not server or not domains:
        raise ATRNError("ODMR needs a server and a domain list")
    host, port = parse_host_port(server, ODMR_PORT)
    endpoint = endpoints.TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    session = ATRNSession(
        reactor,
        helo=helo,
        username=username,
        password=password,
        domains=domains,
        smtp_factory=smtp_factory,
        timeout=timeout,
    )
    try:
        await endpoints.connectProtocol(endpoint, session)
    except Exception as exc:
        raise ATRNError(f"cannot connect to {host}:{port}: {exc}") from exc
    return await session.done
