"""Bulk edit users page (seed-2 §12): select by wildcard and group, tick what to set."""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.server import Request

from vpop3d.app import accounts, bulkedit
from vpop3d.store import groups
from webadmin.forms import arg, flag
from webadmin.guard import Web
from webadmin.views_mail import sentence


def _changes(request: Request) -> tuple[dict[str, Any], str]:
    """The ticked rows of the "Changes to make" grid, or a problem sentence."""
    changes: dict[str, Any] = {}
    for key in bulkedit.SETTABLE:
        if not flag(request, f"set_{key}"):
            continue
        value = arg(request, f"value_{key}")
        if key == "quota_kb":
            if not value.strip().isdigit():
                return {}, "The quota must be a whole number of kB (0 = no limit)."
            changes[key] = int(value)
        elif key in ("enabled", "allow_send_internet", "allow_receive_internet"):
            changes[key] = value == "on"
        else:
            changes[key] = value
    return changes, ""


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/users/bulkedit.html", methods=["GET", "POST"])
    async def bulk_edit(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        pattern, group = arg(request, "pattern", "*"), arg(request, "group")
        matches = await web.db.read(bulkedit.match_users, pattern, group)
        error = ""
        if request.method == b"POST" and arg(request, "action") == "apply":
            chosen = [v.decode() for v in request.args.get(b"user", [])]
            changes, error = _changes(request)
            if not error:
                try:
                    count = await web.db.write(bulkedit.apply, chosen, changes)
                except accounts.AdminError as exc:
                    error = sentence(exc)
                else:
                    web.flash(viewer, "ok", f"{count} user(s) changed.")
                    raise web.redirect(request, "/admin/users.html")
            request.setResponseCode(400)
        group_names = [g.name for g in await web.db.read(groups.list_all)]
        return web.renderer.page(
            "users_bulkedit.html",
            viewer=viewer,
            pattern=pattern,
            group=group,
            matches=matches,
            groups=group_names,
            error=error,
            section="users",
        )
