"""Composition for IMAP listeners: settings → ``IMAPConfig`` → factory.

``build_imap_factory(context, spec)`` is the builder for the ``imap`` protocol
(listeners ``imap`` on 143 and ``imaps`` on 993). The listener config is re-read
from the settings cache for each new connection.

Settings (``imap.<listener>.<key>`` overrides ``imap.<key>``), seed-4 §8:

=======================  ========  =============================================
key                      default   meaning
=======================  ========  =============================================
host_name                [server]  name in the greeting and SASL challenges
require_encrypted_auth   false     LOGINDISABLED / no PLAIN until TLS (L7110)
idle_enabled             true      advertise and accept IDLE (L7146)
max_failed_logins        3         failed logins per session, then BYE (L7147)
append_limit             52428800  APPENDLIMIT, largest APPEND literal in octets
literal_plus             true      LITERAL+; false: LITERAL- (RFC 7888, {n+} <= 4096)
autologout               1800      seconds of silence before BYE (at least 1800)
max_user_logins          20        concurrent sessions per user (L7148)
max_ip_connections       1002      concurrent connections per address (L7149)
max_user_fetches         5         concurrent FETCHes per user, 40 s wait (L7150)
max_server_fetches       50        concurrent FETCHes in the server (L7151)
max_user_searches        2         concurrent SEARCHes per user, 30 s wait (L7152)
modseq_poll_interval     5         seconds between checks for other processes' changes
                                   (global key ``imap.modseq_poll_interval``; 0: off)
fake_access              true      list and select ``#users`` and ``#users/<owner>`` as empty
                                   folders (global key ``imap.fake_access``; false: \\Noselect)
=======================  ========  =============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IProtocolFactory

from vpop3d.app.imapmail import StoreMailStore
from vpop3d.config import ListenerSpec
from vpop3d.proto.imap.server import ConnectionCounter, IMAPLimits, IMAPServerFactory
from vpop3d.proto.imap.session import IMAPConfig

if TYPE_CHECKING:
    from vpop3d.context import ServerContext

__all__ = ["build_imap_factory", "listener_config"]


class _Settings(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


def _setting(settings: _Settings, listener: str, key: str, default: Any) -> Any:
    value = settings.get(f"imap.{listener}.{key}", None)
    if value is None:
        value = settings.get(f"imap.{key}", default)
    return value


def listener_config(
    settings: _Settings, spec: ListenerSpec, hostname: str, tls_available: bool
) -> IMAPConfig:
    """The current configuration of one IMAP listener."""

    def get(key: str, default: Any) -> Any:
        return _setting(settings, spec.name, key, default)

    starttls = tls_available and not spec.implicit_tls and spec.starttls != "off"
    plaintext = not bool(get("require_encrypted_auth", False)) and spec.starttls != "required"
    return IMAPConfig(
        hostname=str(get("host_name", "") or hostname),
        starttls_available=starttls,
        plaintext_without_tls=plaintext or spec.implicit_tls,
        idle_enabled=bool(get("idle_enabled", True)),
        max_failed_logins=max(1, int(get("max_failed_logins", 3))),
        append_limit=max(1024, int(get("append_limit", 50 * 1024 * 1024))),
        literal_plus=bool(get("literal_plus", True)),
    )


def build_imap_factory(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    """The factory for one IMAP listener (implicit TLS is wrapped by the endpoint)."""
    from vpop3d.wiring_delivery import shared_access

    settings = context.settings
    hostname = context.config.hostname
    access = shared_access(context)
    store = context.shared(
        "imap.mailstore",
        lambda: StoreMailStore(
            context.database,
            context.blob_store,
            context.bus,
            context.reactor,
            float(settings.get("imap.modseq_poll_interval", 5.0)),
        ),
    )
    autologout = max(1800.0, float(_setting(settings, spec.name, "autologout", 1800)))
    limits = IMAPLimits(
        autologout=autologout,
        max_logins_per_user=max(1, int(_setting(settings, spec.name, "max_user_logins", 20))),
        max_connections_per_ip=max(
            1, int(_setting(settings, spec.name, "max_ip_connections", 1002))
        ),
    )
    return IMAPServerFactory(
        lambda: listener_config(settings, spec, hostname, context.tls is not None),
        store,
        context.authenticator,
        context.reactor,
        limits,
        tls_context=context.tls,
        implicit_tls=spec.implicit_tls,
        counter=context.shared("imap.counter", ConnectionCounter),
        gate=lambda ip: access.connection_refusal("imap", ip, spec.name) is None,
    )
