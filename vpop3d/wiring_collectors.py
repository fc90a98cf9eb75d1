"""Builds the Mail Collector service from the server context (one per server).

``build_collector_runner(context)`` is the BACKGROUND maker for the SMTP service
(collected mail is routed like SMTP mail and may be queued for LAN forwarding);
it also publishes the runner as ``context.extras["collectors"]`` so the web admin
can offer "collect now".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.application.service import IService
from twisted.internet.interfaces import IProtocolFactory

from vpop3d.app.collectors import CollectorRunner
from vpop3d.app.collectorservice import CollectorService
from vpop3d.config import ListenerSpec
from vpop3d.proto.smtp.server import SMTPServerFactory
from vpop3d.wiring_delivery import shared_delivery, shared_router

if TYPE_CHECKING:
    from vpop3d.context import ServerContext


def _odmr_smtp_factory(context: ServerContext) -> IProtocolFactory:
    """Our SMTP server for the reversed ODMR connection (RFC 2645): an inbound MTA
    session, no AUTH needed, local delivery only."""
    from vpop3d.wiring_smtp import build_smtp_factory

    spec = ListenerSpec(
        name="odmr",
        protocol="smtp",
        role="smtp",
        port=0,
        interface="",
        implicit_tls=False,
        starttls="off",
        require_auth=False,
    )
    return build_smtp_factory(context, spec)


def _inbound_smtp_sessions(context: ServerContext) -> int:
    """Open sessions on every SMTP listener: the feed collector's "wait N seconds" ends
    early once the ISP's delivery session has come and gone."""
    return sum(
        factory.connection_count
        for name, factory in context.extras.items()
        if name.startswith("listener.") and isinstance(factory, SMTPServerFactory)
    )


def shared_collector_runner(context: ServerContext) -> CollectorRunner:
    def kick() -> None:
        found = context.extras.get("queue.kick")
        if callable(found):
            found()

    def make() -> CollectorRunner:
        return CollectorRunner(
            context.database,
            context.blob_store,
            shared_delivery(context),
            shared_router(context),
            context.bus,
            context.settings,
            reactor=context.reactor,
            hostname=context.config.hostname,
            queue_kick=kick,
            smtp_factory=_odmr_smtp_factory(context),
            inbound_sessions=lambda: _inbound_smtp_sessions(context),
        )

    return cast(CollectorRunner, context.shared("collector_runner", make))


def build_collector_runner(context: ServerContext) -> IService:
    """The BACKGROUND entry: ``("smtp", build_collector_runner)``."""
    runner = shared_collector_runner(context)
    context.extras.setdefault("collectors", runner)
    service = CollectorService(runner, context.database, context.settings, context.reactor)
    service.setName("mail-collectors")
    return service
