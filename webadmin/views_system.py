"""Dashboard, Services (listeners, TLS certificate) and Queue pages (seed-4, seed-7)."""

from __future__ import annotations

import datetime
import ipaddress
import time
from dataclasses import dataclass

from klein import Klein
from sqlalchemy import Connection, func, select
from twisted.web.server import Request

from vpop3d.app import accounts, outqueue, queueadmin, wizard
from vpop3d.app.connectors import SCHEDULE_ENABLED
from vpop3d.store import connectors, events, queue, settings
from vpop3d.store.rows import Event
from vpop3d.store.tables import mappings as mappings_table
from vpop3d.store.tables import messages
from vpop3d.store.tables import queue as queue_table
from vpop3d.store.tables import users as users_table
from vpop3d.tls import tls_files
from webadmin import certificates
from webadmin.forms import arg
from webadmin.guard import Viewer, Web
from webadmin.security import ADMIN_NETWORKS_KEY, admin_allowed, peer_ip


@dataclass(frozen=True, slots=True)
class Dashboard:
    users: int
    domains: list[str]
    default_domain: str
    mappings: int
    queue_count: int
    queue_size: int
    received_today: int
    queued_today: int
    errors: list[Event]
    connections: int = 0
    senders_ready: int = 0  # senders that can send (relay servers given, or direct)
    collectors: int = 0
    schedule_items: int = 0
    schedule_enabled: bool = False


def _midnight() -> float:
    now = datetime.datetime.now().astimezone()
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def dashboard_data(conn: Connection) -> Dashboard:
    since = _midnight()
    count = func.count()
    domains = accounts.list_domains(conn)
    default = next((d.name for d in domains if d.is_default), "")
    q_count, q_size = conn.execute(
        select(count, func.coalesce(func.sum(queue_table.c.size), 0))
    ).one()
    return Dashboard(
        users=int(conn.execute(select(count).select_from(users_table)).scalar_one()),
        domains=[d.name for d in domains],
        default_domain=default,
        mappings=int(conn.execute(select(count).select_from(mappings_table)).scalar_one()),
        queue_count=int(q_count),
        queue_size=int(q_size),
        received_today=int(
            conn.execute(
                select(count).select_from(messages).where(messages.c.created_at >= since)
            ).scalar_one()
        ),
        queued_today=int(
            conn.execute(
                select(count).select_from(queue_table).where(queue_table.c.created_at >= since)
            ).scalar_one()
        ),
        errors=[e for e in events.recent(conn, 50) if e.level in ("error", "warning")][:10],
        connections=len(connectors.list_connections(conn)),
        senders_ready=sum(
            1
            for s in connectors.list_senders(conn)
            if s["method"] == "direct" or str(s["relay_servers"]).strip()
        ),
        collectors=len(settings.get(conn, wizard.COLLECTORS_KEY, []) or []),
        schedule_items=len(connectors.list_schedule(conn)),
        schedule_enabled=bool(settings.get(conn, SCHEDULE_ENABLED, False)),
    )


CONNECTORS = "/admin/connectors.html"


def checklist(data: Dashboard) -> list[tuple[str, bool, str, str]]:
    """The "important settings checklist" (seed-1 §4.10): (item, done, detail, link)."""
    return [
        (
            "Local Domains & Default Domain",
            bool(data.domains and data.default_domain),
            ", ".join(data.domains) or "none",
            "/admin/localmail.html",
        ),
        ("Connection", data.connections > 0, f"{data.connections} defined", CONNECTORS),
        (
            "Mail Sender (if needed)",
            data.senders_ready > 0,
            f"{data.senders_ready} ready",
            CONNECTORS,
        ),
        ("Mail Collector(s) (if needed)", True, f"{data.collectors} defined", ""),
        (
            "Connection Schedule",
            data.schedule_items > 0 and data.schedule_enabled,
            f"{data.schedule_items} item(s), scheduling "
            + ("enabled" if data.schedule_enabled else "disabled"),
            CONNECTORS,
        ),
        ("Users", data.users > 0, f"{data.users} defined", "/admin/users.html"),
        ("Mappings (if needed)", True, f"{data.mappings} defined", "/admin/mappings.html"),
    ]


async def landing(web: Web, request: Request, viewer: Viewer) -> bytes:
    data = await web.db.read(dashboard_data)
    listeners = [s for s in web.context.config.listeners if s.enabled]
    return web.renderer.page(
        "dashboard.html",
        viewer=viewer,
        data=data,
        checklist=checklist(data),
        listeners=listeners,
        flashes=web.take_flash(viewer),
        section="dashboard",
    )


def register(app: Klein, web: Web) -> None:
    config = web.context.config

    def certificate_info() -> tuple[certificates.CertificateInfo | None, bool]:
        installed = config.tls_dir / certificates.CERT_FILE
        if installed.exists():
            return certificates.current(installed), True
        files = tls_files(config)
        return certificates.current(files.certificate), False

    @app.route("/admin/services.html", methods=["GET"])
    async def services(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        info, pasted = await web.db.call_in_pool(certificate_info)
        return web.renderer.page(
            "services.html",
            viewer=viewer,
            listeners=config.listeners,
            certificate=info,
            pasted=pasted,
            admin_networks=" ".join(web.settings.get(ADMIN_NETWORKS_KEY, []) or []),
            flashes=web.take_flash(viewer),
            section="services",
        )

    @app.route("/admin/services/certificate", methods=["POST"])
    async def paste_certificate(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        chain, key = arg(request, "chain"), arg(request, "key")
        try:
            info = certificates.validate(chain, key, datetime.datetime.now(datetime.UTC))
        except certificates.CertificateError as exc:
            web.flash(viewer, "error", str(exc))
        else:
            await web.db.call_in_pool(certificates.install, config.tls_dir, chain, key)
            web.flash(
                viewer,
                "ok",
                f"Certificate for {info.subject} saved. Restart vpop3d to use it.",
            )
        raise web.redirect(request, "/admin/services.html")

    @app.route("/admin/services/admin-access", methods=["POST"])
    async def admin_access(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rules = [r for r in arg(request, "networks").replace(",", " ").split() if r]
        try:
            networks = [str(ipaddress.ip_network(r, strict=False)) for r in rules]
        except ValueError as exc:
            web.flash(viewer, "error", f"{exc}: use addresses or networks like 192.168.1.0/24.")
            raise web.redirect(request, "/admin/services.html") from None
        if not admin_allowed(peer_ip(request), networks):
            web.flash(
                viewer,
                "error",
                "Not saved: your own address would lose access. Add your network first.",
            )
        else:
            await web.settings.put(ADMIN_NETWORKS_KEY, networks)
            web.flash(viewer, "ok", "Administration access saved.")
        raise web.redirect(request, "/admin/services.html")

    @app.route("/admin/queue.html", methods=["GET"])
    async def queue_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        entries = await web.db.read(outqueue.list_entries)
        return web.renderer.page(
            "queue.html",
            viewer=viewer,
            entries=entries,
            now=time.time(),
            flashes=web.take_flash(viewer),
            section="queue",
        )

    @app.route("/admin/queue/<int:queue_id>/retry", methods=["POST"])
    async def retry_entry(request: Request, queue_id: int) -> bytes:
        viewer = await web.admin_page(request)
        count = await web.db.write(queueadmin.retry_now, queue_id, time.time())
        if count:
            web.flash(viewer, "ok", f"Message {queue_id} will be tried at the next send.")
        else:
            web.flash(viewer, "error", f"Message {queue_id} has no recipient waiting.")
        raise web.redirect(request, "/admin/queue.html")

    @app.route("/admin/queue/<int:queue_id>/delete", methods=["POST"])
    async def delete_entry(request: Request, queue_id: int) -> bytes:
        viewer = await web.admin_page(request)
        if await web.db.write(queue.remove, queue_id):
            web.flash(viewer, "ok", f"Message {queue_id} removed from the queue.")
        else:
            web.flash(viewer, "error", f"Message {queue_id} is no longer in the queue.")
        raise web.redirect(request, "/admin/queue.html")

    @app.route("/admin/queue/<int:queue_id>/bounce", methods=["POST"])
    async def bounce_entry(request: Request, queue_id: int) -> bytes:
        viewer = await web.admin_page(request)
        try:
            count = await web.db.write(
                outqueue.bounce,
                web.context.blob_store,
                queue_id,
                reporting_mta=config.hostname,
                now=time.time(),
            )
        except outqueue.QueueError:
            web.flash(viewer, "error", f"Message {queue_id} is no longer in the queue.")
            raise web.redirect(request, "/admin/queue.html") from None
        if count:
            kick = web.context.extras.get("queue.kick")
            if callable(kick):
                kick()  # the failure report may itself be queued for sending
            web.flash(
                viewer,
                "ok",
                f"Message {queue_id} bounced: {count} recipient(s) failed and the sender "
                "was sent a failure report.",
            )
        else:
            web.flash(viewer, "error", f"Message {queue_id} has no recipient left to bounce.")
        raise web.redirect(request, "/admin/queue.html")
