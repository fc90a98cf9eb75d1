"""A recording SMTP sink on loopback (aiosmtpd in its own thread) for outbound tests."""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.server import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    tls: bool
    login: str | None


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # rcpt -> reply
    stall_data: threading.Event | None = None  # set = answer DATA; unset = hang
    stall_after: int = 0  # stall only from this message on (0-based count)
    ehlo_names: list[str] = field(default_factory=list)
    data_started: int = 0

    async def handle_EHLO(  # noqa: N802  aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlo_names.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_RCPT(  # noqa: N802  aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.data_started += 1
        if self.stall_data is not None and len(self.received) >= self.stall_after:
            while not self.stall_data.is_set():
                await asyncio.sleep(0.05)
            if server.transport is None or server.transport.is_closing():
                return "451 4.3.0 client gone"  # the sender never saw an answer
        login = session.auth_data.login.decode() if session.auth_data else None
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
                server._tls_protocol is not None,
                login,
            )
        )
        return "250 2.0.0 accepted"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"fred",
        b"mypass",
    )
    return AuthResult(success=ok, auth_data=auth_data)


class Sink:
    """Start with ``Sink(host).start()``; ``.port``, ``.handler.received``; ``stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        port: int | None = None,
        starttls_dir: Path | None = None,
        auth: bool = False,
        implicit_tls: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.handler = SinkHandler()
        kwargs: dict[str, Any] = {}
        if starttls_dir is not None:
            ca = trustme.CA()
            cert = ca.issue_cert("relay.test", host)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            kwargs.update(tls_context=context, require_starttls=True)
        if auth:
            tls = starttls_dir is not None
            # Without TLS, AUTH is offered but not required (aiosmtpd warns otherwise).
            kwargs.update(authenticator=_authenticate, auth_required=tls, auth_require_tls=tls)
        if implicit_tls:
            ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("relay.test", host).configure_cert(context)
            kwargs["ssl_context"] = context
        self.controller = Controller(self.handler, hostname=host, port=self.port, **kwargs)

    def start(self) -> Sink:
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.handler.stall_data is not None:
            self.handler.stall_data.set()
        self.controller.stop()
