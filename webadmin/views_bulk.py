"""Users page extras: Bulk add users (seed-2 §9) and Export users to file (§8)."""

from __future__ import annotations

import csv
import io

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.store import users
from webadmin.forms import arg, flag
from webadmin.guard import Web
from webadmin.views_users import add_user_from

ROWS = 10
BRIEF = ("User Id", "Admin")
VERBOSE = (*BRIEF, "Comments", "Allow send Internet", "Allow receive Internet", "Enabled")


def user_csv(conn: Connection, *, titles: bool, verbose: bool) -> str:
    """``userlist.csv``; passwords are never exported (only hashes are kept)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    if titles:
        writer.writerow(VERBOSE if verbose else BRIEF)
    for u in users.list_all(conn):
        row: list[str] = [u.name, "1" if u.is_admin else "0"]
        if verbose:
            row += [
                u.real_name,
                "1" if u.allow_send_internet else "0",
                "1" if u.allow_receive_internet else "0",
                "1" if u.enabled else "0",
            ]
        writer.writerow(row)
    return out.getvalue()


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/users/bulk.html", methods=["GET", "POST"])
    async def bulk_add(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rows = [("", "", "")] * ROWS
        created: list[str] = []
        if request.method == b"POST":
            rows = []
            for i in range(ROWS):
                name = arg(request, f"name{i}").strip()
                password = arg(request, f"password{i}")
                error = ""
                if name or password:
                    problem = await add_user_from(web, {"name": name, "password": password})
                    if problem:
                        error = problem
                    else:
                        created.append(name.lower())
                        name = password = ""
                rows.append((name, password if error else "", error))
            if created and not any(r[2] for r in rows):
                web.flash(viewer, "ok", f"Created {len(created)} user(s): {', '.join(created)}.")
                raise web.redirect(request, "/admin/users.html")
            if any(r[2] for r in rows):
                request.setResponseCode(400)
        return web.renderer.page(
            "users_bulk.html", viewer=viewer, rows=rows, created=created, section="users"
        )

    @app.route("/admin/userlist.csv", methods=["GET"])
    async def export_users(request: Request) -> bytes:
        await web.admin_page(request)
        text: str = await web.db.read(
            user_csv, titles=flag(request, "titles"), verbose=flag(request, "verbose")
        )
        request.setHeader(b"content-type", b"text/csv; charset=utf-8")
        request.setHeader(b"content-disposition", b'attachment; filename="userlist.csv"')
        return text.encode("utf-8")
