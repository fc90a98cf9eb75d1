"""Outbound ESMTP client: one connection, several messages, per-recipient results.

:class:`SMTPClientProtocol` frames reply lines (RFC 5321 §4.2) and hands each
complete reply to whoever awaits it, with a per-state timeout (RFC 5321 §4.5.3.2).
:class:`SMTPClient` drives the dialogue on top of it: banner, EHLO (HELO when EHLO
is refused), STARTTLS (RFC 3207), AUTH (RFC 4954), and for each message MAIL, RCPT,
DATA with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
(RFC 6531) and DSN (RFC 3461) parameters when the server offers them.

Failures of the session itself (no answer, bad banner, TLS or AUTH refused) raise
:class:`SMTPSessionError`; a message's outcome is a :class:`MessageResult` with
one reply per recipient, so the queue can record each recipient on its own.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from typing_extensions import override

from vpop3d.core.reply import Reply
from vpop3d.core.saslclient import cram_md5_response, plain_response

__all__ = [
    "ClientOptions",
    "MessageResult",
    "OutboundMessage",
    "OutboundRecipient",
    "SMTPClient",
    "SMTPClientProtocol",
    "SMTPSessionError",
    "TLSMode",
    "Timeouts",
    "connect",
    "dot_stuff",
]

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")
_REPLY_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]?)(.*)$")


class TLSMode(Enum):
    """Session encryption of a sender (seed-3 §10)."""

    NONE = "none"
    IMPLICIT = "ssl"  # RFC 8314: TLS from the first byte
    REQUIRED = "starttls"  # no STARTTLS offered: drop the connection, send nothing
    OPTIONAL = "starttls_opt"  # upgrade when offered, else plaintext


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for each reply; defaults are RFC 5321 §4.5.3.2 (seed-3 §15.4)."""

    connect: float = 60.0
    banner: float = 300.0
    ehlo: float = 60.0
    starttls: float = 60.0
    auth: float = 60.0
    mail: float = 300.0
    rcpt: float = 300.0
    data: float = 120.0
    end_data: float = 600.0
    rset: float = 60.0
    quit: float = 60.0


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How to talk to one server."""

    helo_name: str
    tls: TLSMode = TLSMode.OPTIONAL
    # hostname -> TLS connection creator (twisted.internet.ssl); None = no TLS possible
    tls_creator: Callable[[str], Any] | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_method: str = "auto"  # auto | plain | login | cram-md5
    timeouts: Timeouts = Timeouts()


@dataclass(frozen=True, slots=True)
class OutboundRecipient:
    address: str
    notify: str = ""  # comma-separated RFC 3461 NOTIFY words
    orcpt: str | None = None  # "rfc822;addr" as decoded by our server


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One envelope plus its content (CRLF line ends, not dot-stuffed)."""

    sender: str
    recipients: tuple[OutboundRecipient, ...]
    data: bytes
    envid: str | None = None
    ret: str | None = None
    body_type: str | None = None
    smtputf8: bool = False


@dataclass(frozen=True, slots=True)
class MessageResult:
    """The reply that decided each recipient (RCPT refusal, or the DATA answer)."""

    recipients: tuple[tuple[str, Reply], ...]

    def delivered(self) -> list[str]:
        return [address for address, reply in self.recipients if reply.is_success]


class SMTPSessionError(Exception):
    """The session cannot go on: nothing more is sent on this connection.

    ``responded`` says whether the server answered with a banner at all (relay
    failover moves on only when it did not, seed-3 §10).
    """

    def __init__(self, reply: Reply, *, responded: bool) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.responded = responded


def _temp(text: str, enhanced: str = "4.4.2", code: int = 421) -> Reply:
    return Reply(code, enhanced, text)


def _make_reply(code: int, texts: list[str]) -> Reply:
    first = texts[0] if texts else ""
    match = _ENHANCED.match(first)
    enhanced = ""
    if match is not None and match.group(1) == str(code)[0]:
        enhanced = first[: match.end()].strip()
        texts = [first[match.end() :], *texts[1:]]
    return Reply(code, enhanced, "\n".join(texts))


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency, CRLF line ends, and the final ``.`` line."""
    body = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if body.startswith(b"."):
        body = b"." + body
    body = body.replace(b"\r\n.", b"\r\n..")
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def xtext(text: str) -> str:
    """RFC 3461 §4 xtext encoding of an ENVID or ORCPT value."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in "+=" or code < 33 or code > 126:
            out.extend(f"+{byte:02X}" for byte in char.encode())
        else:
            out.append(char)
    return "".join(out)


class SMTPClientProtocol(LineOnlyReceiver):
    """Reply framing: complete replies go to waiters in order, or wait for one."""

    delimiter = b"\r\n"
    MAX_LENGTH = 16384
    _log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._lines: list[str] = []
        self._ready: deque[Reply] = deque()
        self._waiters: deque[tuple[Deferred[Reply], IDelayedCall | None]] = deque()
        self._lost: Failure | None = None
        self.connected_d: Deferred[None] = Deferred()

    @override
    def connectionMade(self) -> None:
        self.connected_d.callback(None)

    @override
    def lineReceived(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        match = _REPLY_LINE.match(line)
        if match is None:
            self._broken(f"bad reply line {line[:80]!r}")
            return
        code, sep, text = match.groups()
        self._lines.append(text.decode("utf-8", "replace"))
        if sep == b"-":
            return
        reply = _make_reply(int(code), self._lines)
        self._lines = []
        if self._waiters:
            waiter, timer = self._waiters.popleft()
            if timer is not None and timer.active():
                timer.cancel()
            waiter.callback(reply)
        else:
            self._ready.append(reply)

    @override
    def lineLengthExceeded(self, line: bytes) -> None:
        self._broken("reply line too long")

    def _broken(self, why: str) -> None:
        self._log.info("closing: {why}", why=why)
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]  # ITCPTransport

    @override
    def connectionLost(self, reason: Failure = ConnectionDone) -> None:  # type: ignore[assignment]  # Twisted's default
        self._lost = reason
        waiters, self._waiters = self._waiters, deque()
        for waiter, timer in waiters:
            if timer is not None and timer.active():
                timer.cancel()
            waiter.errback(reason)

    def send_line(self, line: str) -> None:
        assert self.transport is not None
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def expect(self, timeout: float) -> Deferred[Reply]:
        """The next complete reply; fails on timeout (and drops the connection)."""
        if self._ready:
            return Deferred.fromCoroutine(_value(self._ready.popleft()))
        if self._lost is not None:
            d: Deferred[Reply] = Deferred()
            d.errback(self._lost)
            return d
        waiter: Deferred[Reply] = Deferred()
        entry: list[Any] = [waiter, None]

        def expired() -> None:
            if (waiter, entry[1]) in self._waiters:
                self._waiters.remove((waiter, entry[1]))
            waiter.errback(TimeoutError(f"no reply within {timeout:g}s"))
            self._broken("reply timeout")

        entry[1] = self._clock.callLater(timeout, expired)
        self._waiters.append((waiter, entry[1]))
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


async def _value(reply: Reply) -> Reply:
    return reply


class SMTPClient:
    """One outbound session over a connected :class:`SMTPClientProtocol`."""

    _log = Logger()

    def __init__(
        self, protocol: SMTPClientProtocol, options: ClientOptions, server_name: str
    ) -> None:
        self.protocol = protocol
        self.options = options
        self.server_name = server_name
        self.extensions: dict[str, str] = {}
        self.secure = options.tls is TLSMode.IMPLICIT
        self.esmtp = True
        self.messages_sent = 0
        self.recipients_sent = 0

    async def _command(self, line: str, timeout: float) -> Reply:
        self.protocol.send_line(line)
        return await self._reply(timeout)

    async def _reply(self, timeout: float) -> Reply:
        try:
            return await self.protocol.expect(timeout)
        except TimeoutError as exc:
            raise SMTPSessionError(_temp(f"{self.server_name}: {exc}"), responded=True) from None
        except Exception as exc:  # noqa: BLE001  connection lost mid-dialogue
            reason = exc.value if isinstance(exc, Failure) else exc
            raise SMTPSessionError(
                _temp(f"{self.server_name}: connection lost ({reason})"), responded=True
            ) from None

    # ------------------------------------------------------------------ session

    async def start(self) -> None:
        """Banner, EHLO, STARTTLS and AUTH as the options say (RFC 5321 §3.1, §4.1.1.1)."""
        timeouts = self.options.timeouts
        try:
            banner = await self.protocol.expect(timeouts.banner)
        except Exception:  # noqa: BLE001  no banner at all: the server did not respond
            raise SMTPSessionError(
                _temp(f"{self.server_name}: no greeting"), responded=False
            ) from None
        if banner.code != 220:
            # RFC 5321 §3.1: a 554 greeting means "go away"; try the next host.
            self.protocol.send_line("QUIT")
            self.protocol.close()
            raise SMTPSessionError(banner, responded=False)
        await self._hello()
        if not self.secure and self.options.tls in (TLSMode.REQUIRED, TLSMode.OPTIONAL):
            await self._starttls()
        if self.options.username:
            await self._auth()

    async def _hello(self) -> None:
        timeout = self.options.timeouts.ehlo
        reply = await self._command(f"EHLO {self.options.helo_name}", timeout)
        if reply.code == 250:
            self.esmtp = True
            self.extensions = {}
            for line in reply.text.split("\n")[1:]:
                keyword, _, value = line.strip().partition(" ")
                if keyword:
                    self.extensions[keyword.upper()] = value.strip()
            return
        if reply.code == 421:
            raise SMTPSessionError(reply, responded=True)
        # RFC 5321 §3.2: fall back to HELO when EHLO is not understood.
        reply = await self._command(f"HELO {self.options.helo_name}", timeout)
        if reply.code != 250:
            raise SMTPSessionError(reply, responded=True)
        self.esmtp = False
        self.extensions = {}

    async def _starttls(self) -> None:
        offered = "STARTTLS" in self.extensions and self.options.tls_creator is not None
        if not offered:
            if self.options.tls is TLSMode.REQUIRED:
                await self.quit()
                raise SMTPSessionError(
                    Reply(421, "4.7.0", f"{self.server_name} does not offer STARTTLS"),
                    responded=True,
                )
            return
        reply = await self._command("STARTTLS", self.options.timeouts.starttls)
        if reply.code != 220:
            if self.options.tls is TLSMode.REQUIRED:
                raise SMTPSessionError(reply, responded=True)
            return
        assert self.options.tls_creator is not None
        transport: Any = self.protocol.transport
        transport.startTLS(self.options.tls_creator(self.server_name))
        self.secure = True
        # RFC 3207 §4.2: forget what we knew and say EHLO again.
        await self._hello()

    async def _auth(self) -> None:
        offered = set(self.extensions.get("AUTH", "").upper().split())
        username = self.options.username or ""
        password = self.options.password or ""
        method = self.options.auth_method.lower()
        if method == "auto":
            # seed-3 §10: the most secure method both sides support.
            order = [m for m in ("CRAM-MD5", "LOGIN", "PLAIN") if m in offered]
            method = order[0].lower() if order else "plain"
        timeout = self.options.timeouts.auth
        if method == "cram-md5":
            reply = await self._command("AUTH CRAM-MD5", timeout)
            if reply.code == 334:
                challenge = base64.b64decode(reply.text.strip() or "")
                answer = cram_md5_response(username, password, challenge)
                reply = await self._command(base64.b64encode(answer).decode(), timeout)
        elif method == "login":
            reply = await self._command("AUTH LOGIN", timeout)
            if reply.code == 334:
                reply = await self._command(base64.b64encode(username.encode()).decode(), timeout)
            if reply.code == 334:
                reply = await self._command(base64.b64encode(password.encode()).decode(), timeout)
        else:
            initial = base64.b64encode(plain_response(username, password)).decode()
            reply = await self._command(f"AUTH PLAIN {initial}", timeout)
        if reply.code != 235:
            # A wrong password is the admin's to fix; keep the mail queued.
            raise SMTPSessionError(
                Reply(454 if reply.code >= 500 else reply.code, reply.enhanced, reply.text),
                responded=True,
            )

    # ------------------------------------------------------------------ messages

    def _mail_line(self, message: OutboundMessage) -> str:
        params: list[str] = []
        if "SIZE" in self.extensions:
            params.append(f"SIZE={len(message.data)}")
        body = (message.body_type or "").upper()
        if body == "8BITMIME" and "8BITMIME" in self.extensions:
            params.append("BODY=8BITMIME")
        if message.smtputf8 and "SMTPUTF8" in self.extensions:
            params.append("SMTPUTF8")
        if "DSN" in self.extensions:
            if message.ret:
                params.append(f"RET={message.ret.upper()}")
            if message.envid:
                params.append(f"ENVID={xtext(message.envid)}")
        return " ".join([f"MAIL FROM:<{message.sender}>", *params])

    def _rcpt_line(self, recipient: OutboundRecipient) -> str:
        params: list[str] = []
        if "DSN" in self.extensions:
            if recipient.notify:
                params.append(f"NOTIFY={recipient.notify.upper()}")
            if recipient.orcpt:
                kind, _, address = recipient.orcpt.partition(";")
                params.append(f"ORCPT={kind};{xtext(address)}")
        return " ".join([f"RCPT TO:<{recipient.address}>", *params])

    def _refuse_all(self, message: OutboundMessage, reply: Reply) -> MessageResult:
        return MessageResult(tuple((r.address, reply) for r in message.recipients))

    def _precheck(self, message: OutboundMessage) -> Reply | None:
        size_limit = self.extensions.get("SIZE", "")
        if size_limit.isdigit() and int(size_limit) and len(message.data) > int(size_limit):
            # RFC 1870 §6: the server declared a fixed maximum.
            return Reply(552, "5.3.4", f"message too big for {self.server_name}")
        if message.smtputf8 and "SMTPUTF8" not in self.extensions:
            # RFC 6531 §3.2: cannot downgrade; the recipient server cannot take it.
            return Reply(553, "5.6.7", f"{self.server_name} does not support SMTPUTF8")
        return None

    async def send(self, message: OutboundMessage) -> MessageResult:
        """One transaction; raises :class:`SMTPSessionError` if the session breaks."""
        refusal = self._precheck(message)
        if refusal is not None:
            return self._refuse_all(message, refusal)
        timeouts = self.options.timeouts
        pipelining = "PIPELINING" in self.extensions
        mail_line = self._mail_line(message)
        rcpt_lines = [self._rcpt_line(r) for r in message.recipients]
        if pipelining:
            # RFC 2920 §3.1: MAIL, RCPTs and DATA in one group; DATA is the last.
            for line in [mail_line, *rcpt_lines, "DATA"]:
                self.protocol.send_line(line)
            mail_reply = await self._reply(timeouts.mail)
            rcpt_replies = [await self._reply(timeouts.rcpt) for _ in rcpt_lines]
            data_reply = await self._reply(timeouts.data)
        else:
            mail_reply = await self._command(mail_line, timeouts.mail)
            if mail_reply.code != 250:
                await self.reset()
                return self._refuse_all(message, mail_reply)
            rcpt_replies = [await self._command(line, timeouts.rcpt) for line in rcpt_lines]
            if not any(r.code in (250, 251) for r in rcpt_replies):
                await self.reset()
                return MessageResult(
                    tuple(zip((r.address for r in message.recipients), rcpt_replies, strict=True))
                )
            data_reply = await self._command("DATA", timeouts.data)
        if mail_reply.code != 250:
            if data_reply.code == 354:  # a broken server let DATA through anyway
                self.protocol.send_raw(b".\r\n")
                await self._reply(timeouts.end_data)
            await self.reset()
            return self._refuse_all(message, mail_reply)
        accepted = [r.code in (250, 251) for r in rcpt_replies]
        if data_reply.code != 354:
            await self.reset()
            decided = data_reply if any(accepted) else None
            return MessageResult(
                tuple(
                    (rcpt.address, decided if ok and decided is not None else reply)
                    for rcpt, reply, ok in zip(
                        message.recipients, rcpt_replies, accepted, strict=True
                    )
                )
            )
        if not any(accepted):
            # RFC 2920 §3.1: DATA accepted with no recipients; send an empty body.
            self.protocol.send_raw(b".\r\n")
            await self._reply(timeouts.end_data)
            return MessageResult(
                tuple(zip((r.address for r in message.recipients), rcpt_replies, strict=True))
            )
        self.protocol.send_raw(dot_stuff(message.data))
        final = await self._reply(timeouts.end_data)
        self.messages_sent += 1
        self.recipients_sent += sum(accepted)
        return MessageResult(
            tuple(
                (rcpt.address, final if ok else reply)
                for rcpt, reply, ok in zip(message.recipients, rcpt_replies, accepted, strict=True)
            )
        )

    async def reset(self) -> None:
        """RSET after a refused transaction (RFC 5321 §4.1.1.5)."""
        reply = await self._command("RSET", self.options.timeouts.rset)
        if reply.code != 250:
            raise SMTPSessionError(reply, responded=True)

    async def quit(self) -> None:
        """QUIT and close; errors here change nothing that was already sent."""
        try:
            self.protocol.send_line("QUIT")
            await self.protocol.expect(self.options.timeouts.quit)
        except Exception:  # noqa: BLE001  the server may close first; nothing to do
            self._log.debug("QUIT to {server} not answered", server=self.server_name)
        finally:
            self.protocol.close()


async def connect(
    reactor: Any,
    address: str,
    port: int,
    options: ClientOptions,
    *,
    server_name: str | None = None,
) -> SMTPClient:
    """Connect to ``address:port`` and run :meth:`SMTPClient.start`.

    ``server_name`` is the host name for TLS (SNI, verification) and messages;
    ``address`` may be an IP literal found through DNS.
    """
    name = server_name or address
    endpoint: Any = HostnameEndpoint(
        reactor, address, port, timeout=int(options.timeouts.connect) or 60
    )
    if options.tls is TLSMode.IMPLICIT:
        if options.tls_creator is None:
            raise SMTPSessionError(_temp("implicit TLS without a TLS context"), responded=False)
        endpoint = wrapClientTLS(options.tls_creator(name), endpoint)
    protocol = SMTPClientProtocol(reactor)
    try:
        await connectProtocol(endpoint, protocol)
    except Exception as exc:  # noqa: BLE001  refused, unreachable, DNS: "did not respond"
        raise SMTPSessionError(
            _temp(f"cannot connect to {name}:{port}: {exc}", "4.4.1"), responded=False
        ) from None
    client = SMTPClient(protocol, options, name)
    try:
        await client.start()
    except SMTPSessionError:
        protocol.close()
        raise
    return client
