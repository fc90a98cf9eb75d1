"""Composition for the LDAP listener: settings -> ``LDAPConfig`` -> factory.

``build_ldap_factory(context, spec)`` is the builder ``vpop3d.listeners`` registers
for the ``ldap`` protocol (seed-4 §11). Settings are read again for each new
connection, so admin changes apply without a restart.

=====================  =======  ==================================================
key                    default  meaning
=====================  =======  ==================================================
ldap.require_auth      false    anonymous searches refused (manual L7287); the
                                tap.conf ``require_auth`` key forces it on
ldap.max_results       1000     entries per search without paged results (0: none)
ldap.idle_timeout      600      seconds without a request before the server closes
=====================  =======  ==================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory

from vpop3d.app.addressbook import AddressBookView, Entry
from vpop3d.config import ListenerSpec
from vpop3d.proto.directory import DirectoryEntry
from vpop3d.proto.ldap import LDAPConfig, LDAPServerFactory

if TYPE_CHECKING:
    from vpop3d.context import ServerContext

__all__ = ["build_ldap_factory", "listener_config"]


class _Settings(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


def listener_config(settings: _Settings, spec: ListenerSpec) -> LDAPConfig:
    """The current configuration of one LDAP listener."""
    return LDAPConfig(
        require_auth=spec.require_auth or bool(settings.get("ldap.require_auth", False)),
        max_results=int(settings.get("ldap.max_results", 1000)),
        idle_timeout=float(settings.get("ldap.idle_timeout", 600)),
        secure=spec.implicit_tls,
    )


def _widen(entries: list[Entry]) -> Sequence[DirectoryEntry]:
    return entries


class _Directory:
    """``proto.directory.Directory`` over the app's address-book view."""

    def __init__(self, view: AddressBookView) -> None:
        self._view = view

    @property
    def naming_context(self) -> str:
        return self._view.naming_context

    def entries(self) -> Deferred[Sequence[DirectoryEntry]]:
        return self._view.entries().addCallback(_widen)


def build_ldap_factory(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    """The factory for one LDAP listener (implicit TLS is wrapped by the endpoint)."""
    view: AddressBookView = context.shared(
        "ldap.addressbook", lambda: AddressBookView(context.database)
    )
    settings = context.settings
    return LDAPServerFactory(
        lambda: listener_config(settings, spec),
        directory=_Directory(view),
        authenticator=context.authenticator,
        clock=context.reactor,
        tls=None if spec.implicit_tls else context.tls,
    )
