"""Which factory serves which protocol, and which background services each needs.

Kept apart from ``tap.py`` so that adding a protocol is one entry here. Builders
take the shared :class:`~vpop3d.tap.ServerContext` and one listener's spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import IService
from twisted.internet.interfaces import IProtocolFactory

from vpop3d.config import ListenerSpec

if TYPE_CHECKING:
    from vpop3d.context import ServerContext


def _http(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    from webadmin.site import make_site

    return make_site(context)


def _smtp(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    from vpop3d.wiring_smtp import build_smtp_factory

    return build_smtp_factory(context, spec)


def _pop3(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    from vpop3d.wiring_pop3 import build_pop3_factory

    return build_pop3_factory(context, spec)


def _imap(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    from vpop3d.wiring_imap import build_imap_factory

    return build_imap_factory(context, spec)


def _status(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    from vpop3d.status import StatusFactory

    return StatusFactory(context)


def _ldap(context: ServerContext, spec: ListenerSpec) -> IProtocolFactory:
    from vpop3d.wiring_ldap import build_ldap_factory

    return build_ldap_factory(context, spec)


BUILDERS: dict[str, Callable[[ServerContext, ListenerSpec], IProtocolFactory]] = {
    "http": _http,
    "smtp": _smtp,
    "pop3": _pop3,
    "imap": _imap,
    "status": _status,
    "ldap": _ldap,
}


def _outbound_queue(context: ServerContext) -> IService:
    from vpop3d.wiring_outbound import build_queue_runner

    return build_queue_runner(context)


def _collectors(context: ServerContext) -> IService:
    from vpop3d.wiring_collectors import build_collector_runner

    return build_collector_runner(context)


BACKGROUND: list[tuple[str, Callable[[ServerContext], IService]]] = [
    ("smtp", _outbound_queue),
    ("smtp", _collectors),
]

__all__ = ["BACKGROUND", "BUILDERS", "Any"]
