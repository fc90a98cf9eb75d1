"""Sessions page (seed-7): what is connected or running right now, per service.

Two cheap sources, no protocol changes: the ``leases`` table, which every process
writes while it holds a mailbox (POP3/IMAP maildrop lock), sends a queued message
or runs a mail collector; and per-listener connection counts, shown when the
composition root publishes a listener's factory as ``context.extras["listener.<name>"]``
and that factory has a ``connection_count`` (the SMTP factory has one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from klein import Klein
from sqlalchemy import Connection, select
from twisted.web.server import Request

from vpop3d.store.tables import leases, users
from webadmin.guard import Web

KINDS = {
    "maildrop": "Mailbox in use (POP3/IMAP)",
    "queue": "Sending queued message",
    "collector": "Mail collector running",
}


@dataclass(frozen=True, slots=True)
class LiveSession:
    kind: str
    subject: str  # user name, queue id or collector id
    owner: str  # process/session holding it
    seconds_left: int


def live_sessions(conn: Connection, now: float) -> list[LiveSession]:
    """Unexpired leases by kind; maildrop leases named by their user."""
    rows = conn.execute(
        select(leases.c.name, leases.c.owner, leases.c.expires_at)
        .where(leases.c.expires_at > now)
        .order_by(leases.c.name)
    ).all()
    ids = [int(r.name.split(":", 1)[1]) for r in rows if r.name.startswith("maildrop:")]
    names = (
        dict(conn.execute(select(users.c.id, users.c.name).where(users.c.id.in_(ids))).all())
        if ids
        else {}
    )
    found: list[LiveSession] = []
    for row in rows:
        kind, _, key = row.name.partition(":")
        if kind not in KINDS:
            continue
        subject = names.get(int(key), f"user {key}") if kind == "maildrop" else key
        found.append(LiveSession(kind, str(subject), row.owner, int(row.expires_at - now)))
    return found


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/sessions.html", methods=["GET"])
    async def sessions_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        listeners = []
        for spec in web.context.config.listeners:
            if not spec.enabled:
                continue
            factory = web.context.extras.get(f"listener.{spec.name}")
            count = getattr(factory, "connection_count", None)
            listeners.append((spec, count if isinstance(count, int) else None))
        live = await web.db.read(live_sessions, time.time())
        return web.renderer.page(
            "sessions.html",
            viewer=viewer,
            listeners=listeners,
            live=live,
            kinds=KINDS,
            section="sessions",
        )
