"""Composition for POP3 listeners: settings → ``POP3ListenerConfig`` → factory.

``build_pop3_factory(context, spec)`` is the builder ``vpop3d.listeners`` registers
for the ``pop3`` protocol (listeners ``pop3`` on 110 and ``pop3s`` on 995, plus
extra instances). The listener config is re-read from the settings cache for each
new connection, so admin changes apply without a restart.

Settings (``pop3.<listener>.<key>`` overrides ``pop3.<key>``), seed-4 §6.2:

===========================  =======  ==============================================
key                          default  meaning
===========================  =======  ==============================================
host_name                    [server] name for CRAM-MD5/APOP challenges
max_failed_logins            3        failed logins per session, then disconnect (L6325)
idle_timeout                 600      seconds, at least 600 (RFC 1939 §3)
allow_plaintext_without_tls  true     USER/PASS, AUTH PLAIN/LOGIN on a plain channel
last_line_fix                false    strip trailing blank lines on RETR (L6322)
hold_instead_of_delete       false    DELE+QUIT hides instead of removing (L6329)
===========================  =======  ==============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IProtocolFactory

from vpop3d.app.maildrop import StoreMaildropAccess
from vpop3d.config import ListenerSpec
from vpop3d.core.reply import Reply
from vpop3d.proto.pop3.server import POP3ListenerConfig, POP3ServerFactory, STLSMode

if TYPE_CHECKING:
    from vpop3d.context import ServerContext

__all__ = ["build_pop3_factory", "listener_config"]


class _Settings(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


def _setting(settings: _Settings, listener: str, key: str, default: Any) -> Any:
    value = settings.get(f"pop3.{listener}.{key}", None)
    if value is None:
        value = settings.get(f"pop3.{key}", default)
    return value


def listener_config(settings: _Settings, spec: ListenerSpec, hostname: str) -> POP3ListenerConfig:
    """The current configuration of one POP3 listener."""

    def get(key: str, default: Any) -> Any:
        return _setting(settings, spec.name, key, default)

    return POP3ListenerConfig(
        name=spec.name,
        hostname=str(get("host_name", "") or hostname),
        stls=STLSMode.OFF if spec.implicit_tls else STLSMode(spec.starttls),
        implicit_tls=spec.implicit_tls,
        max_failed_logins=max(1, int(get("max_failed_logins", 3))),
        idle_timeout=max(600.0, float(get("idle_timeout", 600))),
        allow_plaintext_without_tls=bool(get("allow_plaintext_without_tls", True)),
        last_line_fix=bool(get("last_line_fix", False)),
    )


def build_pop3_factory(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    """The factory for one POP3 listener (implicit TLS is wrapped by the endpoint).

    Access control and the authenticator that feeds the IDS and POP3-before-SMTP
    are the server-wide shared instances of ``vpop3d.wiring_delivery``.
    """
    from vpop3d.wiring_delivery import shared_access, shared_authenticator

    access = shared_access(context)
    settings = context.settings
    hostname = context.config.hostname
    maildrops = StoreMaildropAccess(
        context.database,
        context.blob_store,
        context.reactor,
        hold=lambda: bool(_setting(settings, spec.name, "hold_instead_of_delete", False)),
        notifier=context.bus,
    )

    def gate(peer_ip: str) -> Reply | None:
        return access.connection_refusal("pop3", peer_ip, spec.name)

    return POP3ServerFactory(
        lambda: listener_config(settings, spec, hostname),
        shared_authenticator(context),
        maildrops,
        context.reactor,
        context.tls,
        gate=gate,
    )
