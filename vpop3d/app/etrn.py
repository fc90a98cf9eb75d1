"""ETRN for the "Incoming SMTP Mail Feed" collector (RFC 1985, seed-3 §8, seed-1 §11.2).

Connect to the ISP's SMTP server, EHLO (HELO if refused), ``ETRN <argument>``,
``QUIT``. The ISP then opens its own connection to our SMTP service and delivers
normally. Replies 250-253 are success (RFC 1985 §5); anything else becomes the
Last connection result ``Error from remote server on "ETRN x" -> <reply>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure


def _abort(transport: object) -> None:
    """Drop the connection now (ITCPTransport.abortConnection), if there is one."""
    abort = getattr(transport, "abortConnection", None)
    if callable(abort):
        abort()


__all__ = ["ETRNError", "ETRNSession", "parse_host_port", "send_etrn", "wait_for_feed"]

ETRN_OK = {250, 251, 252, 253}  # RFC 1985 §5


class ETRNError(Exception):
    """The ETRN exchange failed; ``str()`` is the Last-result text."""


def parse_host_port(text: str, default: int = 25) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if sep and port.isdigit() and host:
        return host.strip("[]"), int(port)
    return text.strip(), default


class ETRNSession(Protocol):
    """A tiny SMTP client: replies are collected whole (multi-line ``250-``)."""

    def __init__(self, clock: Any, argument: str, helo: str, timeout: float = 60.0) -> None:
        self._clock = clock
        self._argument = argument
        self._helo = helo
        self._timeout = timeout
        self._buffer = b""
        self._lines: list[str] = []
        self._step = "greeting"
        self._timer: IDelayedCall | None = None
        self.done: Deferred[str] = Deferred()

    def connectionMade(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self._clock.callLater(self._timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._end(ETRNError(f"timeout waiting for the reply to {self._step}"))
        _abort(self.transport)

    def _end(self, outcome: str | Exception) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.done.called:
            return
        if isinstance(outcome, Exception):
            self.done.errback(outcome)
        else:
            self.done.callback(outcome)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            self._lines.append(line)
            if len(line) >= 4 and line[3] == "-":
                continue  # RFC 5321 §4.2.1 multi-line reply continues
            reply, self._lines = " / ".join(self._lines), []
            code = int(line[:3]) if line[:3].isdigit() else 0
            self._reply(code, reply)

    def _send(self, step: str, line: str) -> None:
        self._step = step
        self.transport.write(line.encode("utf-8") + b"\r\n")  # type: ignore[union-attr]
        self._arm()

    def _reply(self, code: int, text: str) -> None:
        step = self._step
        if step == "greeting":
            if code != 220:
                return self._fail("(connect)", text)
            return self._send("EHLO", f"EHLO {self._helo}")
        if step == "EHLO":
            if code != 250:
                return self._send("HELO", f"HELO {self._helo}")
            return self._send("ETRN", f"ETRN {self._argument}")
        if step == "HELO":
            if code != 250:
                return self._fail(f"HELO {self._helo}", text)
            return self._send("ETRN", f"ETRN {self._argument}")
        if step == "ETRN":
            if code not in ETRN_OK:
                return self._fail(f"ETRN {self._argument}", text)
            self._result = text
            return self._send("QUIT", "QUIT")
        if step == "QUIT":
            self.transport.loseConnection()  # type: ignore[union-attr]
            self._end(f"OK: ETRN accepted: {self._result}")
        return None

    def _fail(self, command: str, text: str) -> None:
        self._end(ETRNError(f'Error from remote server on "{command}" -> {text}'))
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._step == "QUIT" and hasattr(self, "_result"):
            self._end(f"OK: ETRN accepted: {self._result}")
        else:
            self._end(ETRNError(f"connection lost during {self._step}"))


async def send_etrn(
    reactor: Any, server: str, argument: str, *, helo: str, timeout: float = 60.0
) -> str:
    """Run one ETRN session; returns the result text, raises :class:`ETRNError`."""
    if not server or not argument:
        raise ETRNError("ETRN needs a server and a parameter")
    host, port = parse_host_port(server)
    endpoint = endpoints.TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    session = ETRNSession(reactor, argument, helo, timeout)
    try:
        await endpoints.connectProtocol(endpoint, session)
    except Exception as exc:
        raise ETRNError(f"cannot connect to {host}:{port}: {exc}") from exc
    return await session.done


MAX_OVERTIME = 600.0  # an inbound session still running at N s is waited for this long


async def wait_for_feed(
    clock: Any,
    seconds: float,
    inbound: Callable[[], int] | None = None,
    *,
    poll: float = 1.0,
) -> str:
    """ "Wait for up to N seconds for an incoming SMTP connection" (seed-3 §8 [L5498-5506]).

    Keeps the collector's run (and so its Connection's schedule slot) open for at
    least ``seconds`` so the ISP can push its mail after ETRN. ``inbound`` counts the
    SMTP sessions now open on our listener: once one more than at the start has come
    and gone, the wait ends early (the manual's example: wait 30 s, a session from
    3 s to 8 s, hang up at 8 s); a session still open at N s is waited for. Without
    ``inbound`` the whole N seconds pass. Returns a phrase for the Last result.
    """
    start = clock.seconds()
    base = inbound() if inbound is not None else 0
    came = False
    while True:
        elapsed = clock.seconds() - start
        busy = inbound() > base if inbound is not None else False
        came = came or busy
        if came and not busy:
            break  # the ISP delivered and hung up: no need to stay
        if elapsed >= seconds and (not busy or elapsed >= seconds + MAX_OVERTIME):
            break
        step = poll if busy or came else min(poll, max(seconds - elapsed, 0.0))
        await task.deferLater(clock, max(step, 0.001), lambda: None)
    waited = round(clock.seconds() - start)
    return f"waited {waited} s for incoming SMTP" + (" (a session came in)" if came else "")
