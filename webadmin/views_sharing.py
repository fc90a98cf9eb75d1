"""The Shared folders page: IMAP folder sharing without an ACL-speaking IMAP client.

Lists every share, adds one (owner, one of the owner's folders, a user, a group or
anyone, preset rights or RFC 4314 letters) and removes one. Grantees find the folder
as ``#users/<owner>/<folder>`` (features-b §4); group shares reach secondary members
(seed-2 §3.1). The same use cases back ``/api/v1/shares``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import shareadmin
from vpop3d.app.accounts import AdminError
from vpop3d.store import groups, users
from webadmin.forms import arg
from webadmin.guard import Viewer, Web, json_body
from webadmin.views_mail import sentence

PAGE = "/admin/sharing.html"
MAX_ID = 2**31 - 1


def _page_data(conn: Connection, owner: str) -> dict[str, Any]:
    return {
        "shares": shareadmin.all_shares(conn),
        "users": [u.name for u in users.list_all(conn)],
        "groups": [g.name for g in groups.list_all(conn)],
        "folders": shareadmin.folder_names(conn, owner),
    }


async def _render(
    web: Web, request: Request, viewer: Viewer, values: dict[str, str], error: str = ""
) -> bytes:
    data = await web.db.read(_page_data, values.get("owner", ""))
    return web.renderer.page(
        "sharing.html",
        viewer=viewer,
        values=values,
        error=error,
        presets=shareadmin.PRESETS,
        words=shareadmin.WORDS,
        flashes=web.take_flash(viewer),
        section="sharing",
        **data,
    )


def register(app: Klein, web: Web) -> None:
    @app.route(PAGE, methods=["GET"])
    async def sharing_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        values = {k: arg(request, k) for k in ("owner", "folder", "grantee")}
        values["preset"] = arg(request, "preset", "read")
        return await _render(web, request, viewer, values)

    @app.route("/admin/sharing/add", methods=["POST"])
    async def add_share(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        values = {
            k: arg(request, k).replace("\x00", "")
            for k in ("owner", "folder", "grantee", "preset", "custom")
        }
        try:
            rights = shareadmin.rights_from(values["preset"], values["custom"])
            share = await web.db.write(
                shareadmin.add_share,
                values["owner"],
                values["folder"],
                values["grantee"],
                rights,
            )
        except AdminError as exc:
            request.setResponseCode(400)
            return await _render(web, request, viewer, values, sentence(exc))
        web.flash(
            viewer,
            "ok",
            f"{share.owner}'s folder {share.folder} is shared with {_who(share)} "
            f"({share.label}); they see it as {share.shared_name}.",
        )
        raise web.redirect(request, PAGE + "?" + urlencode({"owner": share.owner}))

    @app.route("/admin/sharing/<int:share_id>/delete", methods=["POST"])
    async def delete_share(request: Request, share_id: int) -> bytes:
        viewer = await web.admin_page(request)
        try:
            share = await web.db.write(shareadmin.remove_share, _safe(share_id))
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", f"{share.shared_name} is no longer shared with {_who(share)}.")
        raise web.redirect(request, PAGE)

    register_api(app, web)


def _who(share: shareadmin.Share) -> str:
    if share.kind == "group":
        return f"group {share.grantee}"
    return share.grantee or "everyone"


def _safe(number: int) -> int:
    """Ids past the column range cannot exist (and would overflow the driver)."""
    return number if 0 < number <= MAX_ID else 0


# ---------------------------------------------------------------- JSON API (/api/v1)


def _share_json(share: shareadmin.Share) -> dict[str, Any]:
    return {
        "id": share.id,
        "owner": share.owner,
        "folder": share.folder,
        "grantee": share.identifier,
        "rights": share.rights,
        "label": share.label,
        "imap_name": share.shared_name,
    }


def register_api(app: Klein, web: Web) -> None:
    """Shares for scripts: list, create (SETACL semantics), delete."""
    from webadmin.api import read_json  # webadmin.api -> openapi -> this module

    def fail(request: Request, code: int, text: str) -> bytes:
        return json_body(request, code, {"error": text})

    @app.route("/api/v1/shares", methods=["GET"])
    async def api_shares(request: Request) -> bytes:
        await web.api_admin(request)
        rows = await web.db.read(shareadmin.all_shares)
        return json_body(request, 200, [_share_json(s) for s in rows])

    @app.route("/api/v1/shares", methods=["POST"])
    async def api_add_share(request: Request) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        fields = ("owner", "folder", "grantee", "rights")
        if set(body) != set(fields) or not all(isinstance(body[k], str) for k in fields):
            return fail(
                request,
                400,
                'the body must be {"owner", "folder", "grantee", "rights"}, all strings',
            )
        rights = str(body["rights"])
        try:
            letters = shareadmin.rights_from(
                rights if rights in shareadmin.PRESETS else "custom", rights
            )
            share = await web.db.write(
                shareadmin.add_share, body["owner"], body["folder"], body["grantee"], letters
            )
        except AdminError as exc:
            return fail(request, 400, sentence(exc))
        return json_body(request, 201, _share_json(share))

    @app.route("/api/v1/shares/<int:share_id>", methods=["DELETE"])
    async def api_delete_share(request: Request, share_id: int) -> bytes:
        await web.api_admin(request)
        try:
            await web.db.write(shareadmin.remove_share, _safe(share_id))
        except AdminError as exc:
            return fail(request, 404, sentence(exc))
        request.setResponseCode(204)
        return b""


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Share": {
        "type": "object",
        "required": ["id", "owner", "folder", "grantee", "rights", "label", "imap_name"],
        "properties": {
            "id": {"type": "integer"},
            "owner": {"type": "string"},
            "folder": {"type": "string"},
            "grantee": {
                "type": "string",
                "description": "a user name, group:<name> or anyone (RFC 4314 identifier)",
            },
            "rights": {"type": "string", "description": "RFC 4314 letters, canonical order"},
            "label": {"type": "string", "description": "the rights in plain words"},
            "imap_name": {"type": "string", "description": "#users/<owner>/<folder>"},
        },
    },
    "NewShare": {
        "type": "object",
        "required": ["owner", "folder", "grantee", "rights"],
        "additionalProperties": False,
        "properties": {
            "owner": {"type": "string"},
            "folder": {"type": "string"},
            "grantee": {"type": "string"},
            "rights": {
                "type": "string",
                "description": "read, read_seen, read_write, full, or RFC 4314 letters",
            },
        },
    },
}


def openapi_paths(op: Any, json_response: Any, errors: Any, path_param: Any) -> dict[str, Any]:
    """The share operations for ``webadmin.openapi`` (its helpers passed in)."""
    std = (401, 403)
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewShare"}}},
    }
    return {
        "/shares": {
            "get": op(
                "Every shared IMAP folder with its grantee and rights",
                {
                    "200": json_response(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Share"}}
                    )
                }
                | errors(*std),
            ),
            "post": op(
                "Share a folder (replaces the grantee's rights on it)",
                {"201": json_response({"$ref": "#/components/schemas/Share"}, "Created")}
                | errors(400, *std, 413),
                requestBody=body,
            ),
        },
        "/shares/{id}": {
            "parameters": [path_param("id", "integer")],
            "delete": op("Stop sharing", {"204": {"description": "Done"}} | errors(*std, 404)),
        },
    }
