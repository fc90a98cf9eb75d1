"""Local Mail (domains, default domain, implied mapping), Mappings and Groups pages."""

from __future__ import annotations

from klein import Klein
from twisted.web.server import Request

from vpop3d.app import accounts, groupadmin, mappingcsv
from vpop3d.app.routing import DISABLE_IMPLIED
from webadmin.forms import arg, flag
from webadmin.guard import Viewer, Web, routing_changed


def implied_mapping(web: Web) -> bool:
    """The implied mapping (seed-1 §17 [L1923], default on) is the router's own switch,
    ``localmail.disable_implied_mappings``: the one key written and read."""
    return not web.settings.get_bool(DISABLE_IMPLIED, False)


async def set_implied_mapping(web: Web, on: bool) -> None:
    await web.settings.put(DISABLE_IMPLIED, not on)
    routing_changed(web.context)


def sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


async def _act(web: Web, viewer: Viewer, done: str, fn: object, *args: object) -> None:
    """Run one admin use case in a write transaction and flash its outcome."""
    try:
        await web.db.write(fn, *args)  # type: ignore[arg-type]
    except accounts.AdminError as exc:
        web.flash(viewer, "error", sentence(exc))
    else:
        web.flash(viewer, "ok", done)


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/localmail.html", methods=["GET"])
    async def local_mail(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        domains = await web.db.read(accounts.list_domains)
        return web.renderer.page(
            "localmail.html",
            viewer=viewer,
            domains=domains,
            implied=implied_mapping(web),
            flashes=web.take_flash(viewer),
            section="localmail",
        )

    @app.route("/admin/domains/add", methods=["POST"])
    async def add_domain(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        # The wizard's field takes several domains separated by semicolons [L720].
        for name in [n.strip() for n in arg(request, "name").split(";") if n.strip()]:
            await _act(
                web, viewer, f"Local domain {name.lower()} added.", accounts.add_domain, name
            )
        raise web.redirect(request, "/admin/localmail.html")

    @app.route("/admin/domains/delete", methods=["POST"])
    async def delete_domain(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        name = arg(request, "name")
        await _act(web, viewer, f"Local domain {name} removed.", accounts.delete_domain, name)
        raise web.redirect(request, "/admin/localmail.html")

    @app.route("/admin/domains/default", methods=["POST"])
    async def default_domain(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        name = arg(request, "name")
        await _act(
            web, viewer, f"{name} is now the default domain.", accounts.set_default_domain, name
        )
        raise web.redirect(request, "/admin/localmail.html")

    @app.route("/admin/localmail/settings", methods=["POST"])
    async def local_settings(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        await set_implied_mapping(web, flag(request, "implied_mapping"))
        web.flash(viewer, "ok", "Local Mail settings saved.")
        raise web.redirect(request, "/admin/localmail.html")

    @app.route("/admin/mappings.html", methods=["GET"])
    async def mappings_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rows = await web.db.read(accounts.list_mappings)
        return web.renderer.page(
            "mappings.html",
            viewer=viewer,
            mappings=rows,
            flashes=web.take_flash(viewer),
            section="mappings",
        )

    @app.route("/admin/mappings/add", methods=["POST"])
    async def add_mapping(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        pattern = arg(request, "pattern")
        targets = [t for t in arg(request, "targets").replace(",", ";").split(";")]
        direction = "from" if arg(request, "direction") == "from" else "to"
        try:
            await web.db.write(accounts.add_mapping, pattern, targets, direction=direction)
        except accounts.AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", f"Mapping for {pattern.strip()} added.")
        raise web.redirect(request, "/admin/mappings.html")

    @app.route("/admin/mappings.csv", methods=["GET"])
    async def export_mappings(request: Request) -> bytes:
        await web.admin_page(request)
        text: str = await web.db.read(mappingcsv.export_csv, titles=flag(request, "titles"))
        request.setHeader(b"content-type", b"text/csv; charset=utf-8")
        request.setHeader(b"content-disposition", b'attachment; filename="mappings.csv"')
        return text.encode("utf-8")

    @app.route("/admin/mappings/import", methods=["POST"])
    async def import_mappings(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        raw = request.args.get(b"file", [b""])[0]
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            web.flash(viewer, "error", "The file is not UTF-8 text; save it as CSV (UTF-8).")
            raise web.redirect(request, "/admin/mappings.html") from None
        added, problems = await web.db.write(mappingcsv.import_csv, text)
        web.flash(viewer, "ok", f"{added} mapping(s) imported.")
        for problem in problems[:20]:
            web.flash(viewer, "error", sentence(ValueError(problem)))
        raise web.redirect(request, "/admin/mappings.html")

    @app.route("/admin/mappings/<int:mapping_id>/delete", methods=["POST"])
    async def delete_mapping(request: Request, mapping_id: int) -> bytes:
        viewer = await web.admin_page(request)
        await _act(web, viewer, "Mapping deleted.", accounts.delete_mapping, str(mapping_id))
        raise web.redirect(request, "/admin/mappings.html")

    @app.route("/admin/groups.html", methods=["GET"])
    async def groups_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rows = await web.db.read(groupadmin.list_groups)
        return web.renderer.page(
            "groups.html",
            viewer=viewer,
            rows=rows,
            tristate=groupadmin.TRISTATE,
            flashes=web.take_flash(viewer),
            section="groups",
        )

    @app.route("/admin/groups/add", methods=["POST"])
    async def add_group(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        name = arg(request, "name")
        await _act(web, viewer, f"Group {name.lower()} added.", groupadmin.add_group, name)
        raise web.redirect(request, "/admin/groups.html")

    @app.route("/admin/groups/<int:group_id>/delete", methods=["POST"])
    async def delete_group(request: Request, group_id: int) -> bytes:
        viewer = await web.admin_page(request)
        await _act(web, viewer, "Group deleted.", groupadmin.delete_group, group_id)
        raise web.redirect(request, "/admin/groups.html")
