"""Composition for SMTP listeners: settings → ``SMTPListenerConfig`` → factory.

``build_smtp_factory(context, spec)`` is the builder ``vpop3d.listeners`` registers
for the ``smtp`` protocol. Every listener (MTA 25, submission 587, SMTPS 465, extra
instances) shares one ``Delivery`` and one ``AccessControl`` (IDS, bans, rate, IP
rules checked at connect); its limits are re-read from the settings cache for each
new connection, so admin changes apply without a restart.

Settings (``smtp.<listener>.<key>`` overrides ``smtp.<key>``):

=============================  =========  ============================================
key                            default    meaning
=============================  =========  ============================================
host_name                      [server]   name in the banner and EHLO (manual L6899)
greeting                       ESMTP ...  banner text after the host name
max_recipients                 100        RCPTs per message (RFC 5321 §4.5.3.1.8)
max_messages_per_session       0          MAIL transactions per session (0: no limit)
max_errors                     20         5xx replies before 421 and close
max_failed_logins              3          failed AUTHs before close (manual L6884)
command_timeout                300        seconds (RFC 5321 §4.5.3.2.7)
data_timeout                   600        seconds inside DATA/BDAT
max_connections                50         concurrent sessions (manual L6590)
max_connections_per_ip         10         concurrent sessions per client (L6604)
require_encrypted_auth         false      no PLAIN/LOGIN without TLS (L6379)
disable_dsn                    false      hide DSN and refuse its parameters (L6903)
max_line_length                1000       DATA line limit incl. CRLF (0: none, L6939)
refuse_helo                    ""         comma list; HELO containing one is refused
=============================  =========  ============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IProtocolFactory

from vpop3d.config import ListenerSpec
from vpop3d.core.reply import Reply
from vpop3d.proto.smtp.server import SMTPListenerConfig, SMTPServerFactory

if TYPE_CHECKING:
    from vpop3d.context import ServerContext

__all__ = ["build_smtp_factory", "listener_config"]


class _Settings(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


def _setting(settings: _Settings, listener: str, key: str, default: Any) -> Any:
    value = settings.get(f"smtp.{listener}.{key}", None)
    if value is None:
        value = settings.get(f"smtp.{key}", default)
    return value


def listener_config(settings: _Settings, spec: ListenerSpec, hostname: str) -> SMTPListenerConfig:
    """The current configuration of one SMTP listener."""

    def get(key: str, default: Any) -> Any:
        return _setting(settings, spec.name, key, default)

    refuse = str(get("refuse_helo", "") or "")
    return SMTPListenerConfig(
        name=spec.name,
        hostname=str(get("host_name", "") or hostname),
        greeting=str(get("greeting", "ESMTP server ready")),
        implicit_tls=spec.implicit_tls,
        starttls=spec.starttls,
        require_auth=spec.require_auth,
        max_recipients=int(get("max_recipients", 100)),
        max_messages=int(get("max_messages_per_session", 0)),
        max_errors=int(get("max_errors", 20)),
        max_auth_failures=int(get("max_failed_logins", 3)),
        command_timeout=float(get("command_timeout", 300)),
        data_timeout=float(get("data_timeout", 600)),
        max_connections=int(get("max_connections", 50)),
        max_connections_per_ip=int(get("max_connections_per_ip", 10)),
        allow_plaintext_auth_without_tls=not bool(get("require_encrypted_auth", False)),
        dsn=not bool(get("disable_dsn", False)),
        max_line_length=int(get("max_line_length", 1000)),
        refuse_helo=tuple(part.strip() for part in refuse.split(",") if part.strip()),
    )


def build_smtp_factory(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    """The factory for one SMTP listener (implicit TLS is wrapped by the endpoint).

    Delivery, access control and the IDS-feeding authenticator are the server-wide
    shared instances of ``vpop3d.wiring_delivery``.
    """
    from vpop3d.wiring_delivery import shared_access, shared_authenticator, shared_delivery

    access = shared_access(context)
    settings = context.settings
    hostname = context.config.hostname

    def gate(peer_ip: str) -> Reply | None:
        return access.connection_refusal("smtp", peer_ip, spec.name)

    return SMTPServerFactory(
        lambda: listener_config(settings, spec, hostname),
        authenticator=shared_authenticator(context),
        delivery=shared_delivery(context),
        clock=context.reactor,
        tls=context.tls,
        gate=gate,
    )
