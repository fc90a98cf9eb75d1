"""The JSON API under ``/api/v1`` (described by ``/api/v1/openapi.json``).

The pages' in-place editing uses it with the session cookie plus the
``X-CSRF-Token`` header; scripts use HTTP Basic with an administrator's web login.
Errors are ``{"error": "<sentence>"}`` with 400 (refused), 401, 403 or 404.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import accounts, groupadmin
from vpop3d.app.usergrid import FilterError, query_users
from vpop3d.store import queue, users
from webadmin.guard import Halt, Web, json_body
from webadmin.openapi import document
from webadmin.views_mail import implied_mapping, sentence, set_implied_mapping
from webadmin.views_system import dashboard_data
from webadmin.views_users import add_user_from, delete_user_as, grid_query

MAX_BODY = 1 << 20
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def read_json(request: Request) -> dict[str, Any]:
    content = request.content.read(MAX_BODY + 1) if request.content else b""
    if len(content) > MAX_BODY:
        raise Halt(json_body(request, 413, {"error": "request body too large"}))
    try:
        value = json.loads(content or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Halt(json_body(request, 400, {"error": "the body must be a JSON object"})) from None
    if not isinstance(value, dict):
        raise Halt(json_body(request, 400, {"error": "the body must be a JSON object"}))
    if not _clean(value):
        raise Halt(
            json_body(
                request, 400, {"error": "Text must not contain NUL characters or broken Unicode."}
            )
        )
    return value


def _clean(value: Any) -> bool:
    """No NUL and no lone surrogates anywhere: the store cannot hold them (PostgreSQL)."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is None
    if isinstance(value, dict):
        return all(_clean(k) and _clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v) for v in value)
    return True


def _user_json(conn: Connection, name: str) -> dict[str, Any] | None:
    user = users.by_name(conn, name)
    if user is None:
        return None
    return {
        "name": user.name,
        "real_name": user.real_name,
        "enabled": user.enabled,
        "is_admin": user.is_admin,
        "quota_kb": user.quota_kb,
        "must_change_password": user.must_change_password,
        "primary_group_id": user.primary_group_id,
        "allow_send_internet": user.allow_send_internet,
        "allow_receive_internet": user.allow_receive_internet,
    }


INTERNET = ("allow_send_internet", "allow_receive_internet")


def _patch_user(conn: Connection, name: str, changes: dict[str, Any]) -> None:
    internet = {k: changes.pop(k) for k in INTERNET if k in changes}
    if changes:
        accounts.update_user(conn, name, **changes)
    if internet:
        user = users.by_name(conn, name)
        if user is None:
            raise accounts.AdminError(f"no such user {name!r}")
        accounts.set_internet_mail(
            conn,
            name,
            send=internet.get("allow_send_internet", user.allow_send_internet),
            receive=internet.get("allow_receive_internet", user.allow_receive_internet),
        )
    accounts.require_enabled_admin(conn)


def _group_json(row: groupadmin.GroupRow) -> dict[str, Any]:
    return {**asdict(row.group), "user_count": row.user_count}


def _check_types(body: dict[str, Any], types: dict[str, type | tuple[type, ...]]) -> str | None:
    for key, value in body.items():
        expected = types.get(key)
        if expected is None:
            return f"unknown field {key!r}"
        if isinstance(value, bool) and expected is int:
            return f"{key} must be a number"
        if not isinstance(value, expected):
            return f"{key} has the wrong type"
    return None


def register(app: Klein, web: Web) -> None:
    def fail(request: Request, code: int, text: str) -> bytes:
        return json_body(request, code, {"error": text})

    @app.route("/api/v1/openapi.json", methods=["GET"])
    def api_openapi(request: Request) -> bytes:
        return json_body(request, 200, document())

    @app.route("/api/v1/dashboard", methods=["GET"])
    async def api_dashboard(request: Request) -> bytes:
        await web.api_admin(request)
        data = await web.db.read(dashboard_data)
        body = asdict(data)
        body["errors"] = [{"at": e.at, "level": e.level, "text": e.text} for e in data.errors]
        return json_body(request, 200, body)

    @app.route("/api/v1/users", methods=["GET"])
    async def api_list_users(request: Request) -> bytes:
        await web.api_admin(request)
        try:
            page = await web.db.read(query_users, grid_query(request))
        except FilterError as exc:
            return fail(request, 400, str(exc))
        return json_body(
            request,
            200,
            {"total": page.total, "defined": page.defined, "users": [asdict(r) for r in page.rows]},
        )

    @app.route("/api/v1/users", methods=["POST"])
    async def api_add_user(request: Request) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        problem = _check_types(
            body,
            {"name": str, "password": str, "real_name": str, "is_admin": bool, "quota_kb": int},
        )
        if problem is None and not {"name", "password"} <= set(body):
            problem = "name and password are required"
        if problem is None and int(body.get("quota_kb", 0)) < 0:
            problem = "quota_kb must be 0 (no limit) or more"
        if problem is None:
            problem = await add_user_from(web, body)
        if problem:
            return fail(request, 400, problem)
        found = await web.db.read(_user_json, body["name"])
        return json_body(request, 201, found)

    @app.route("/api/v1/users/<name>", methods=["GET"])
    async def api_get_user(request: Request, name: str) -> bytes:
        await web.api_admin(request)
        found = await web.db.read(_user_json, name)
        if found is None:
            return fail(request, 404, f"no user {name}")
        return json_body(request, 200, found)

    @app.route("/api/v1/users/<name>", methods=["PATCH"])
    async def api_patch_user(request: Request, name: str) -> bytes:
        viewer = await web.api_admin(request)
        body = read_json(request)
        problem = _check_types(
            body,
            {
                "real_name": str,
                "enabled": bool,
                "is_admin": bool,
                "quota_kb": int,
                "allow_send_internet": bool,
                "allow_receive_internet": bool,
            },
        )
        if problem:
            return fail(request, 400, problem)
        if name.lower() == viewer.user.name and body.get("is_admin") is False:
            return fail(request, 400, "You cannot clear your own Administrator flag.")
        if len(body.get("real_name", "")) > 80:
            return fail(request, 400, "Comments can be at most 80 characters.")
        if not body:
            found = await web.db.read(_user_json, name)
            if found is None:
                return fail(request, 404, f"no user {name}")
            return json_body(request, 200, found)
        try:
            await web.db.write(_patch_user, name, body)
        except accounts.AdminError as exc:
            code = 404 if str(exc).startswith("no such user") else 400
            return fail(request, code, sentence(exc))
        return json_body(request, 200, await web.db.read(_user_json, name))

    @app.route("/api/v1/users/<name>", methods=["DELETE"])
    async def api_delete_user(request: Request, name: str) -> bytes:
        viewer = await web.api_admin(request)
        error = await delete_user_as(web, viewer, name)
        if error:
            return fail(request, 404 if error.startswith("No such user") else 400, error)
        request.setResponseCode(204)
        return b""

    @app.route("/api/v1/domains", methods=["GET"])
    async def api_list_domains(request: Request) -> bytes:
        await web.api_admin(request)
        rows = await web.db.read(accounts.list_domains)
        return json_body(request, 200, [{"name": d.name, "default": d.is_default} for d in rows])

    @app.route("/api/v1/domains", methods=["POST"])
    async def api_add_domain(request: Request) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        problem = _check_types(body, {"name": str, "default": bool})
        if problem or "name" not in body:
            return fail(request, 400, problem or "name is required")
        try:
            row = await web.db.write(
                accounts.add_domain, body["name"], make_default=bool(body.get("default"))
            )
        except accounts.AdminError as exc:
            return fail(request, 400, sentence(exc))
        return json_body(request, 201, {"name": row.name, "default": row.is_default})

    @app.route("/api/v1/domains/<name>", methods=["DELETE"])
    async def api_delete_domain(request: Request, name: str) -> bytes:
        await web.api_admin(request)
        try:
            await web.db.write(accounts.delete_domain, name)
        except accounts.AdminError as exc:
            return fail(request, 400, sentence(exc))
        request.setResponseCode(204)
        return b""

    @app.route("/api/v1/settings/local-mail", methods=["GET"])
    async def api_get_local_mail(request: Request) -> bytes:
        await web.api_admin(request)
        return json_body(request, 200, {"implied_mapping": implied_mapping(web)})

    @app.route("/api/v1/settings/local-mail", methods=["PUT"])
    async def api_put_local_mail(request: Request) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        problem = _check_types(body, {"implied_mapping": bool})
        if problem or "implied_mapping" not in body:
            return fail(request, 400, problem or "implied_mapping is required")
        await set_implied_mapping(web, body["implied_mapping"])
        return json_body(request, 200, {"implied_mapping": body["implied_mapping"]})

    @app.route("/api/v1/mappings", methods=["GET"])
    async def api_list_mappings(request: Request) -> bytes:
        await web.api_admin(request)
        rows = await web.db.read(accounts.list_mappings)
        return json_body(request, 200, [_mapping_json(m) for m in rows])

    @app.route("/api/v1/mappings", methods=["POST"])
    async def api_add_mapping(request: Request) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        problem = _check_types(body, {"pattern": str, "targets": list, "direction": str})
        if problem is None and not {"pattern", "targets"} <= set(body):
            problem = "pattern and targets are required"
        if problem is None and not all(isinstance(t, str) for t in body["targets"]):
            problem = "targets must be a list of strings"
        if problem:
            return fail(request, 400, problem)
        try:
            row = await web.db.write(
                accounts.add_mapping,
                body["pattern"],
                body["targets"],
                direction=body.get("direction", "to"),
            )
        except accounts.AdminError as exc:
            return fail(request, 400, sentence(exc))
        return json_body(request, 201, _mapping_json(row))

    @app.route("/api/v1/mappings/<int:mapping_id>", methods=["DELETE"])
    async def api_delete_mapping(request: Request, mapping_id: int) -> bytes:
        await web.api_admin(request)
        try:
            await web.db.write(accounts.delete_mapping, str(mapping_id))
        except accounts.AdminError as exc:
            return fail(request, 404, sentence(exc))
        request.setResponseCode(204)
        return b""

    @app.route("/api/v1/groups", methods=["GET"])
    async def api_list_groups(request: Request) -> bytes:
        await web.api_admin(request)
        rows = await web.db.read(groupadmin.list_groups)
        return json_body(request, 200, [_group_json(r) for r in rows])

    @app.route("/api/v1/groups", methods=["POST"])
    async def api_add_group(request: Request) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        if not isinstance(body.get("name"), str) or set(body) != {"name"}:
            return fail(request, 400, 'the body must be {"name": "<group name>"}')
        try:
            group = await web.db.write(groupadmin.add_group, body["name"])
        except accounts.AdminError as exc:
            return fail(request, 400, sentence(exc))
        return json_body(request, 201, _group_json(groupadmin.GroupRow(group, 0)))

    @app.route("/api/v1/groups/<int:group_id>", methods=["PATCH"])
    async def api_patch_group(request: Request, group_id: int) -> bytes:
        await web.api_admin(request)
        body = read_json(request)
        try:
            group = await web.db.write(groupadmin.update_group, group_id, **body)
        except accounts.AdminError as exc:
            code = 404 if str(exc).startswith("no such group") else 400
            return fail(request, code, sentence(exc))
        rows = await web.db.read(groupadmin.list_groups)
        row = next((r for r in rows if r.group.id == group.id), groupadmin.GroupRow(group, 0))
        return json_body(request, 200, _group_json(row))

    @app.route("/api/v1/groups/<int:group_id>", methods=["DELETE"])
    async def api_delete_group(request: Request, group_id: int) -> bytes:
        await web.api_admin(request)
        try:
            await web.db.write(groupadmin.delete_group, group_id)
        except accounts.AdminError as exc:
            return fail(request, 404, sentence(exc))
        request.setResponseCode(204)
        return b""

    @app.route("/api/v1/queue", methods=["GET"])
    async def api_list_queue(request: Request) -> bytes:
        await web.api_admin(request)
        entries = await web.db.read(queue.entries)
        return json_body(
            request,
            200,
            [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "sender": e.sender,
                    "size": e.size,
                    "created_at": e.created_at,
                    "recipients": [
                        {"address": a, "state": s, "attempts": n, "last_error": err}
                        for a, s, n, err in e.recipients
                    ],
                }
                for e in entries
            ],
        )

    @app.route("/api/v1/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    def api_not_found(request: Request, rest: str) -> bytes:
        """Unknown API paths (or ids that are not numbers) answer in JSON too."""
        return fail(request, 404, "no such API resource")

    @app.route("/api/v1/queue/<int:queue_id>", methods=["DELETE"])
    async def api_delete_queued(request: Request, queue_id: int) -> bytes:
        await web.api_admin(request)
        if not await web.db.write(queue.remove, queue_id):
            return fail(request, 404, f"no queued message {queue_id}")
        request.setResponseCode(204)
        return b""


def _mapping_json(m: Any) -> dict[str, Any]:
    return {
        "id": m.id,
        "pattern": m.pattern,
        "targets": list(m.targets),
        "direction": m.direction,
        "enabled": m.enabled,
    }
