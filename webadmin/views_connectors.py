"""Mail Connectors: Connections with their Senders, and the Connector Schedule with
its global enable switch (seed-3; the wizard leaves scheduling off, seed-1 §4.9)."""

from __future__ import annotations

from klein import Klein
from twisted.web.server import Request

from vpop3d.app import connectoradmin
from vpop3d.app.accounts import AdminError
from vpop3d.app.connectors import SCHEDULE_ENABLED
from vpop3d.core.schedule import DAY_NAMES
from vpop3d.store import connectors
from webadmin.forms import arg, flag, int_arg
from webadmin.guard import Web
from webadmin.views_mail import sentence


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/connectors.html", methods=["GET"])
    async def connectors_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rows = await web.db.read(connectoradmin.overview)
        schedule = await web.db.read(connectors.list_schedule)
        return web.renderer.page(
            "connectors.html",
            viewer=viewer,
            rows=rows,
            schedule=schedule,
            enabled=web.settings.get_bool(SCHEDULE_ENABLED, False),
            encryptions=connectoradmin.ENCRYPTIONS,
            days=DAY_NAMES,
            flashes=web.take_flash(viewer),
            section="connectors",
        )

    @app.route("/admin/connectors/<int:connection_id>", methods=["POST"])
    async def save_sender(request: Request, connection_id: int) -> bytes:
        viewer = await web.admin_page(request)
        password = arg(request, "password")
        try:
            await web.db.write(
                connectoradmin.update_sender,
                connection_id,
                name=arg(request, "name"),
                method=arg(request, "method"),
                relay_servers=arg(request, "relay_servers"),
                encryption=arg(request, "encryption"),
                auth_required=flag(request, "auth_required"),
                username=arg(request, "username"),
                password=password or None,
            )
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", "Connection and Mail Sender saved.")
        raise web.redirect(request, "/admin/connectors.html")

    @app.route("/admin/schedule/enable", methods=["POST"])
    async def enable_schedule(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        on = flag(request, "enabled")
        await web.settings.put(SCHEDULE_ENABLED, on)
        web.flash(viewer, "ok", "Scheduling enabled." if on else "Scheduling disabled.")
        raise web.redirect(request, "/admin/connectors.html")

    @app.route("/admin/schedule/add", methods=["POST"])
    async def add_item(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        mask = sum(1 << i for i in range(7) if flag(request, f"day{i}"))
        chosen = arg(request, "connection")
        try:
            await web.db.write(
                connectoradmin.add_schedule_item,
                name=arg(request, "name"),
                connection_id=int(chosen) if chosen.isdigit() else None,
                interval=int_arg(request, "interval", 0),
                start=arg(request, "start", "00:00"),
                end=arg(request, "end", "23:59"),
                days_mask=mask,
            )
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", "Schedule item added.")
        raise web.redirect(request, "/admin/connectors.html")

    @app.route("/admin/schedule/<int:item_id>/delete", methods=["POST"])
    async def delete_item(request: Request, item_id: int) -> bytes:
        viewer = await web.admin_page(request)
        try:
            await web.db.write(connectoradmin.remove_schedule_item, item_id)
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", "Schedule item deleted.")
        raise web.redirect(request, "/admin/connectors.html")
