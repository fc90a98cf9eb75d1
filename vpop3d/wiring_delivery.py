"""Builds the shared routing/access/delivery objects from the server context.

One instance of each per server (``ServerContext.shared``), used by every SMTP
listener, and later by collectors, lists and webmail:

* ``shared_access(context)``: IP rules, relay settings, IDS and throttles; the POP3
  service calls ``.record_pop_login(ip, user)`` and every service ``.admit(ip)``;
* ``shared_router(context)``: cached routing over the store;
* ``shared_delivery(context)``: the ``ports.DeliveryAgent`` for SMTP listeners;
* ``shared_authenticator(context)``: the authenticator wrapped to feed the IDS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred, succeed

from vpop3d.app.access import AccessAwareAuthenticator, AccessControl, facts_from_proc_route
from vpop3d.app.delivery import Delivery
from vpop3d.app.routing import Router

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from vpop3d.context import ServerContext

PROC_ROUTE = Path("/proc/net/route")  # Linux; elsewhere only loopback is "local"


def _read_routes() -> str:
    try:
        return PROC_ROUTE.read_text()
    except OSError:
        return ""


def shared_access(context: ServerContext) -> AccessControl:
    def make() -> AccessControl:
        logging = getattr(context.config, "logging", None)
        return AccessControl(
            context.settings,
            context.reactor,
            facts=facts_from_proc_route(_read_routes()),
            log_dir=getattr(logging, "log_dir", None),
        )

    return cast(AccessControl, context.shared("access", make))


class _LazyLists:
    """The lists feature, looked up when needed: ``context.extras["lists"]`` (with
    ``members(name)``) and ``context.extras["lists.names"]`` (``fn(conn)``)."""

    def __init__(self, context: ServerContext) -> None:
        self._context = context

    def members(self, name: str) -> Deferred[Sequence[str]]:
        service = self._context.extras.get("lists")
        if service is None:
            return succeed([])
        return cast(Deferred[Sequence[str]], service.members(name))

    def names(self, conn: Connection) -> Iterable[str]:
        names = self._context.extras.get("lists.names")
        return cast(Iterable[str], names(conn)) if callable(names) else ()


def shared_router(context: ServerContext) -> Router:
    def make() -> Router:
        return Router(
            context.database,
            context.reactor,
            setting=context.settings.get_bool,
            settings=context.settings,
            list_names=_LazyLists(context).names,
        )

    return cast(Router, context.shared("router", make))


def shared_delivery(context: ServerContext, queue_kick: Any = None) -> Delivery:
    """The DeliveryAgent; the outbound queue's kick() is ``queue_kick`` or whatever
    ``context.extras["queue.kick"]`` holds when a message is queued."""

    def kick() -> None:
        # Looked up at each delivery: the queue service may register after us.
        found = queue_kick or context.extras.get("queue.kick")
        if callable(found):
            found()

    def make() -> Delivery:
        return Delivery(
            context.database,
            context.blob_store,
            shared_router(context),
            shared_access(context),
            context.bus,
            context.settings,
            clock=context.reactor,
            hostname=context.config.hostname,
            tmp_dir=context.config.data_dir / "tmp",
            queue_kick=kick,
            lists=_LazyLists(context),
        )

    return cast(Delivery, context.shared("delivery", make))


def shared_authenticator(context: ServerContext) -> AccessAwareAuthenticator:
    """``context.authenticator`` wrapped so logins feed the IDS and POP3-before-SMTP.

    Protocol builders should pass this, not ``context.authenticator``, to factories.
    """

    def make() -> AccessAwareAuthenticator:
        return AccessAwareAuthenticator(context.authenticator, shared_access(context))

    return cast(AccessAwareAuthenticator, context.shared("access.authenticator", make))
