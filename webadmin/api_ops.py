"""JSON API for the operations pages: IP access tables, users CSV import, queue bounce.

Same use cases as the pages (``views_access``, ``views_import``, ``views_system``).
"""

from __future__ import annotations

import time
from typing import Any

from klein import Klein
from sqlalchemy import Connection
from twisted.web.server import Request

from vpop3d.app import accessadmin, outqueue, userimport
from vpop3d.app.access import rule_to_json
from vpop3d.app.accessadmin import USER_NAME
from vpop3d.store import users
from webadmin.api import read_json
from webadmin.guard import Web, json_body
from webadmin.views_import import run_import

IMPORT_MODES = ("file", "username", "text")  # "random" writes a log: pages only


def _existing(conn: Connection, names: list[str]) -> list[str]:
    # Only plausible names reach the database (a NUL would be an SQL error).
    return [n for n in names if USER_NAME.fullmatch(n) and users.by_name(conn, n) is not None]


def register(app: Klein, web: Web) -> None:
    def fail(request: Request, code: int, text: str, **extra: Any) -> bytes:
        sentence = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
        return json_body(request, code, {"error": sentence, **extra})

    def table_json(table: accessadmin.Table) -> dict[str, Any]:
        stored = web.settings.get(table.key, None)
        rules = accessadmin.current_rules(table, stored)
        body: dict[str, Any] = {
            "table": table.name,
            "default": stored is None,
            "rules": [rule_to_json(r) for r in rules],
        }
        if table.name != accessadmin.GLOBAL:
            body["use_global"] = web.settings.get_bool(table.use_global_key, False)
        return body

    @app.route("/api/v1/access/<name>", methods=["GET"])
    async def api_get_access(request: Request, name: str) -> bytes:
        await web.api_admin(request)
        table = accessadmin.TABLES.get(name)
        if table is None:
            return fail(request, 404, f"no access table {name}; use smtp, pop3, imap or global")
        return json_body(request, 200, table_json(table))

    @app.route("/api/v1/access/<name>", methods=["PUT"])
    async def api_put_access(request: Request, name: str) -> bytes:
        await web.api_admin(request)
        table = accessadmin.TABLES.get(name)
        if table is None:
            return fail(request, 404, f"no access table {name}; use smtp, pop3, imap or global")
        body = read_json(request)
        raw, use_global = body.get("rules"), body.get("use_global")
        if not isinstance(raw, list) or set(body) - {"rules", "use_global"}:
            return fail(request, 400, 'the body must be {"rules": [...], "use_global": bool}')
        if use_global is not None and (
            not isinstance(use_global, bool) or table.name == accessadmin.GLOBAL
        ):
            return fail(request, 400, "use_global is a boolean, for service tables only")
        names = sorted(
            {
                str(u).casefold()
                for item in raw
                if isinstance(item, dict) and isinstance(item.get("users"), list)
                for u in item["users"]
            }
        )
        known = await web.db.read(_existing, names) if names else []
        try:
            rules = accessadmin.rules_from_json(table, raw, known)
        except accessadmin.AccessFormError as exc:
            return fail(request, 400, str(exc))
        await web.settings.put(table.key, accessadmin.to_setting(rules))
        if use_global is not None:
            await web.settings.put(table.use_global_key, use_global)
        return json_body(request, 200, table_json(table))

    @app.route("/api/v1/import/users", methods=["POST"])
    async def api_import_users(request: Request) -> bytes:
        viewer = await web.api_admin(request)
        body = read_json(request)
        text, mode = body.get("csv"), body.get("passwords", "file")
        flags = {
            k: body.get(k, d)
            for k, d in (
                ("ignore_first_line", True),
                ("update_existing", False),
                ("remove_missing", False),
            )
        }
        known = {"csv", "passwords", *flags}
        if (
            not isinstance(text, str)
            or mode not in IMPORT_MODES
            or not all(isinstance(v, bool) for v in flags.values())
            or set(body) - known
        ):
            return fail(
                request,
                400,
                'the body must be {"csv": "<file text>", "passwords": "file"|"username"|'
                '"text", "ignore_first_line": bool, "update_existing": bool, '
                '"remove_missing": bool}',
            )
        options = userimport.ImportOptions(
            ignore_first_line=flags["ignore_first_line"],
            update_existing=flags["update_existing"],
            remove_missing=flags["remove_missing"],
            passwords=userimport.PasswordMode(mode),
        )
        try:
            result = await run_import(web, text, options, viewer.user.name)
        except userimport.ImportRefused as exc:
            return fail(request, 400, "nothing was imported", problems=exc.problems)
        for name in result.deleted:
            web.sessions.end_user(name)
        return json_body(
            request,
            200,
            {
                "created": result.created,
                "updated": result.updated,
                "skipped": result.skipped,
                "deleted": result.deleted,
                "ignored_columns": result.ignored_columns,
            },
        )

    @app.route("/api/v1/queue/<int:queue_id>/bounce", methods=["POST"])
    async def api_bounce(request: Request, queue_id: int) -> bytes:
        await web.api_admin(request)
        try:
            count = await web.db.write(
                outqueue.bounce,
                web.context.blob_store,
                queue_id,
                reporting_mta=web.context.config.hostname,
                now=time.time(),
            )
        except outqueue.QueueError:
            return fail(request, 404, f"no queued message {queue_id}")
        if count:
            kick = web.context.extras.get("queue.kick")
            if callable(kick):
                kick()
        return json_body(request, 200, {"bounced": count})
