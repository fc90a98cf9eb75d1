"""The Users pages (seed-2 §1-4): grid, add, edit, delete.

Validation that the manual gives for the Add User dialog [L2456-2480] happens here
before the shared use cases in ``vpop3d.app.accounts`` apply their own rules.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import accounts, shareadmin
from vpop3d.app.usergrid import FilterError, UserQuery, query_users
from vpop3d.store import groups, queue, users
from vpop3d.store.rows import Group
from webadmin.forms import arg, flag, int_arg
from webadmin.guard import Viewer, Web
from webadmin.views_auth import password_problem

USERNAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
PAGE_SIZE = 50


def username_problem(name: str) -> str | None:
    if not USERNAME.fullmatch(name):
        return "The username must be 1 to 32 letters, digits, '.', '_' or '-' (no spaces, no '@')."
    return None


def grid_query(request: Request) -> UserQuery:
    return UserQuery(
        sort=arg(request, "sort", "name"),
        descending=arg(request, "dir") == "desc",
        name=arg(request, "name"),
        group=arg(request, "group"),
        messages=arg(request, "messages"),
        size=arg(request, "size"),
        comments=arg(request, "comments"),
        offset=max(int_arg(request, "offset", 0), 0),
        limit=min(max(int_arg(request, "limit", PAGE_SIZE), 1), 500),
    )


def _queue_summary(conn: Connection) -> tuple[int, int]:
    entries = queue.entries(conn)
    return len(entries), sum(e.size for e in entries)


async def add_user_from(web: Web, values: dict[str, Any]) -> str | None:
    """Create a user from form/API values; return a message for the admin, or None."""
    name = str(values.get("name", "")).strip()
    password = str(values.get("password", ""))
    confirm = str(values.get("confirm", password))
    comments = str(values.get("real_name", ""))
    problem = (
        username_problem(name)
        or password_problem(web, password, confirm)
        or ("Comments can be at most 80 characters." if len(comments) > 80 else None)
    )
    if problem:
        return problem
    try:
        await web.db.write(
            accounts.add_user,
            name,
            password,
            real_name=comments,
            is_admin=bool(values.get("is_admin", False)),
            quota_kb=int(values.get("quota_kb", 0) or 0),
        )
    except accounts.AdminError as exc:
        return str(exc)[0].upper() + str(exc)[1:] + "."
    return None


def _user_and_groups(conn: Connection, name: str) -> tuple[Any, list[Group], list[int]]:
    user = users.by_name(conn, name)
    secondary = users.secondary_groups(conn, user.id) if user else []
    return user, groups.list_all(conn), secondary


def register(app: Klein, web: Web) -> None:
    @app.route("/admin/users.html", methods=["GET"])
    async def users_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        q = grid_query(request)
        error = ""
        try:
            page = await web.db.read(query_users, q)
        except FilterError as exc:
            error = str(exc)
            page = await web.db.read(query_users, UserQuery(sort=q.sort, limit=q.limit))
        count, size = await web.db.read(_queue_summary)
        group_names = [g.name for g in await web.db.read(groups.list_all)]
        base = {
            k: v
            for k, v in {
                "name": q.name,
                "group": q.group,
                "messages": q.messages,
                "size": q.size,
                "comments": q.comments,
            }.items()
            if v
        }

        def link(**changes: Any) -> str:
            params = {"sort": q.sort, "dir": "desc" if q.descending else "asc", **base}
            params.update({k: str(v) for k, v in changes.items()})
            return "/admin/users.html?" + urlencode(params)

        return web.renderer.page(
            "users.html",
            viewer=viewer,
            page=page,
            q=q,
            error=error,
            link=link,
            groups=group_names,
            queue_count=count,
            queue_size=size,
            flashes=web.take_flash(viewer),
            section="users",
        )

    @app.route("/admin/users/new.html", methods=["GET"])
    async def new_user(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        return web.renderer.page(
            "user_new.html", viewer=viewer, values={}, error="", section="users"
        )

    @app.route("/admin/users/new.html", methods=["POST"])
    async def add_user(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        values: dict[str, Any] = {
            "name": arg(request, "name"),
            "password": arg(request, "password"),
            "confirm": arg(request, "confirm"),
            "real_name": arg(request, "real_name"),
            "is_admin": flag(request, "is_admin"),
        }
        error = await add_user_from(web, values)
        if error is None:
            web.flash(viewer, "ok", f"User {values['name'].lower()} has been created.")
            raise web.redirect(request, "/admin/users.html")
        request.setResponseCode(400)
        return web.renderer.page(
            "user_new.html", viewer=viewer, values=values, error=error, section="users"
        )

    @app.route("/admin/users/<name>/edit.html", methods=["GET", "POST"])
    async def edit_user(request: Request, name: str) -> bytes:
        viewer = await web.admin_page(request)
        user, all_groups, secondary = await web.db.read(_user_and_groups, name)
        if user is None:
            request.setResponseCode(404)
            return web.renderer.page("refused.html", viewer=viewer, message=f"No user {name}.")
        error = ""
        if request.method == b"POST":
            error = await _save_user(web, request, viewer, user.name)
            if not error:
                web.flash(viewer, "ok", f"User {user.name} has been saved.")
                raise web.redirect(request, "/admin/users.html")
            request.setResponseCode(400)
            user, all_groups, secondary = await web.db.read(_user_and_groups, name)
        return web.renderer.page(
            "user_edit.html",
            viewer=viewer,
            user=user,
            groups=all_groups,
            secondary=secondary,
            shares=await web.db.read(shareadmin.for_user, user.id),
            error=error,
            section="users",
        )

    @app.route("/admin/users/<name>/delete", methods=["POST"])
    async def delete_user(request: Request, name: str) -> bytes:
        viewer = await web.admin_page(request)
        error = await delete_user_as(web, viewer, name)
        if error:
            web.flash(viewer, "error", error)
        else:
            web.flash(viewer, "ok", f"User {name} has been deleted.")
        raise web.redirect(request, "/admin/users.html")


async def delete_user_as(web: Web, viewer: Viewer, name: str) -> str | None:
    """Delete ``name`` with the spec's rules (never yourself, never the last admin)."""
    try:
        await web.db.write(accounts.delete_user, name, acting_user=viewer.user.name)
    except accounts.AdminError as exc:
        text = str(exc)
        return text[0].upper() + text[1:] + "."
    web.sessions.end_user(name.lower())
    return None


def _set_group(conn: Connection, name: str, group: str) -> None:
    user = users.by_name(conn, name)
    if user is None:
        raise accounts.AdminError(f"no such user {name!r}")
    group_id = None
    if group:
        found = groups.by_name(conn, group)
        if found is None:
            raise accounts.AdminError(f"no such group {group!r}")
        group_id = found.id
    users.update_fields(conn, user.id, primary_group_id=group_id)


def _apply_edit(
    conn: Connection,
    name: str,
    changes: dict[str, Any],
    group: str,
    secondary: list[int],
    password: str,
    internet: tuple[bool, bool],
) -> None:
    """All of one Edit User submit in one transaction: all of it or nothing."""
    accounts.update_user(conn, name, **changes)
    accounts.set_internet_mail(conn, name, send=internet[0], receive=internet[1])
    _set_group(conn, name, group)
    known = {g.id for g in groups.list_all(conn)}
    user = users.by_name(conn, name)
    assert user is not None
    users.set_secondary_groups(conn, user.id, sorted(set(secondary) & known))
    accounts.require_enabled_admin(conn)
    if password:
        accounts.set_password(conn, name, password)


async def _save_user(web: Web, request: Request, viewer: Viewer, name: str) -> str:
    real_name = arg(request, "real_name")
    if len(real_name) > 80:
        return "Comments can be at most 80 characters."
    is_admin = flag(request, "is_admin")
    if name == viewer.user.name and not is_admin and viewer.user.is_admin:
        return "You cannot clear your own Administrator flag."
    quota = arg(request, "quota_kb").strip() or "0"
    if not quota.isdigit():
        return "The quota must be a whole number of kB (0 = no limit)."
    password = arg(request, "password")
    if password:
        problem = password_problem(web, password, arg(request, "confirm"))
        if problem:
            return problem
    changes = {
        "real_name": real_name,
        "is_admin": is_admin,
        "enabled": flag(request, "enabled"),
        "quota_kb": int(quota),
    }
    try:
        secondary = [
            int(v)
            for v in request.args.get(b"secondary", [])
            if v.decode("ascii", "replace").isdigit()
        ]
        internet = (flag(request, "allow_send_internet"), flag(request, "allow_receive_internet"))
        await web.db.write(
            _apply_edit, name, changes, arg(request, "group"), secondary, password, internet
        )
    except accounts.AdminError as exc:
        text = str(exc)
        return text[0].upper() + text[1:] + "."
    return ""
