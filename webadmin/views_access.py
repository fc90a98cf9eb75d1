"""IP Access Restrictions pages, one per service plus the global table (seed-4 §3, §15).

Changes are written to the settings that ``vpop3d.app.access`` reads on every
connection, so they apply to the next connection without a restart.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import accessadmin
from vpop3d.app.accessadmin import USER_NAME, AccessFormError, Table
from vpop3d.store import users
from vpop3d.wiring_delivery import shared_access
from webadmin.forms import arg, flag, int_arg
from webadmin.guard import Web

PAGE = "/admin/access.html?service="


def _existing_users(conn: Connection, names: list[str]) -> list[str]:
    # Only plausible names reach the database (a NUL would be an SQL error).
    return [n for n in names if USER_NAME.fullmatch(n) and users.by_name(conn, n) is not None]


def _entered_names(text: str) -> list[str]:
    return [n.strip().casefold() for n in text.replace(";", ",").split(",") if n.strip()]


def register(app: Klein, web: Web) -> None:
    def rules(table: Table) -> list[Any]:
        return accessadmin.current_rules(table, web.settings.get(table.key, None))

    async def save(table: Table, rows: list[Any]) -> None:
        await web.settings.put(table.key, accessadmin.to_setting(rows))

    @app.route("/admin/access.html", methods=["GET"])
    async def access_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        name = arg(request, "service", "smtp")
        table = accessadmin.TABLES.get(name)
        if table is None:
            raise web.redirect(request, PAGE + "smtp")
        facts = shared_access(web.context).facts
        return web.renderer.page(
            "access.html",
            viewer=viewer,
            table=table,
            tables=accessadmin.TABLES.values(),
            rows=[(r, accessadmin.describe(r)) for r in rules(table)],
            types=accessadmin.TYPE_LABELS,
            is_default=web.settings.get(table.key, None) is None,
            use_global=web.settings.get_bool(table.use_global_key, False),
            global_count=len(rules(accessadmin.TABLES[accessadmin.GLOBAL])),
            routers=[str(r) for r in facts.routers],
            local_nets=[str(n) for n in facts.local_nets],
            flashes=web.take_flash(viewer),
            section="services",
        )

    @app.route("/admin/access/<name>/add", methods=["POST"])
    async def add_row(request: Request, name: str) -> bytes:
        viewer = await web.admin_page(request)
        table = accessadmin.TABLES.get(name)
        if table is None:
            raise web.redirect(request, PAGE + "smtp")
        entered = _entered_names(arg(request, "users"))
        known = await web.db.read(_existing_users, entered) if entered else []
        try:
            new, note = accessadmin.rules_from_form(
                table,
                allow=arg(request, "restrict", "allow") != "block",
                kind=arg(request, "type", "network"),
                address=arg(request, "address"),
                allow_unauth=flag(request, "allow_unauth"),
                users=arg(request, "users"),
                known_users=known,
            )
        except AccessFormError as exc:
            web.flash(viewer, "error", str(exc))
            raise web.redirect(request, PAGE + table.name) from None
        rows, duplicates = accessadmin.add_rules(rules(table), new)
        if duplicates and len(duplicates) == len(new):
            web.flash(
                viewer, "error", f"The table already has {duplicates[0]}; remove it to change it."
            )
            raise web.redirect(request, PAGE + table.name)
        await save(table, rows)
        added = ", ".join(accessadmin.describe(r) for r in new)
        web.flash(viewer, "ok", f"{added} added to the {table.title} table. {note}".strip())
        raise web.redirect(request, PAGE + table.name)

    @app.route("/admin/access/<name>/remove", methods=["POST"])
    async def remove_row(request: Request, name: str) -> bytes:
        viewer = await web.admin_page(request)
        table = accessadmin.TABLES.get(name)
        if table is None:
            raise web.redirect(request, PAGE + "smtp")
        rows = rules(table)
        index = int_arg(request, "row", -1)
        if not 0 <= index < len(rows) or accessadmin.describe(rows[index]) != arg(request, "key"):
            web.flash(viewer, "error", "The table changed meanwhile; nothing was removed.")
            raise web.redirect(request, PAGE + table.name)
        removed = rows.pop(index)
        await save(table, rows)
        message = f"{accessadmin.describe(removed)} removed."
        if not rows and table.default_rows:
            message += (
                " The table is blank: no address may connect unless the global table allows it."
            )
        web.flash(viewer, "ok", message)
        raise web.redirect(request, PAGE + table.name)

    @app.route("/admin/access/<name>/defaults", methods=["POST"])
    async def defaults(request: Request, name: str) -> bytes:
        viewer = await web.admin_page(request)
        table = accessadmin.TABLES.get(name)
        if table is None:
            raise web.redirect(request, PAGE + "smtp")
        await web.settings.put(table.key, accessadmin.default_setting())
        web.flash(viewer, "ok", "Defaults restored: Block Routers, Allow Local Networks.")
        raise web.redirect(request, PAGE + table.name)

    @app.route("/admin/access/<name>/use-global", methods=["POST"])
    async def use_global(request: Request, name: str) -> bytes:
        viewer = await web.admin_page(request)
        table = accessadmin.TABLES.get(name)
        if table is None or table.name == accessadmin.GLOBAL:
            raise web.redirect(request, PAGE + "smtp")
        on = flag(request, "use_global")
        await web.settings.put(table.use_global_key, on)
        web.flash(
            viewer,
            "ok",
            "The global table now also applies (the most restrictive wins)."
            if on
            else "The global table applies only while this table is blank.",
        )
        raise web.redirect(request, PAGE + table.name)
