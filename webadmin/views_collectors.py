"""Mail Collectors pages (seed-3 §2-§8): the list, add/edit for the three types with
the manual's tabs (General, POP3 General, POP3 Routing, Routing Errors, SMTP Options,
ODMR Options), the Messages tab (UIDL inventory with Get/Del/forget), the global
Download Rules editor, and "Collect now".

Form values are checked here (numbers) and by ``vpop3d.app.collectoradmin`` (the
rules of the spec) before anything is written; a refused form is shown again with
the admin's values and one sentence saying what to fix. Passwords never go back to
the browser: a blank password field keeps the stored one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from klein import Klein
from twisted.logger import Logger
from twisted.web.server import Request

from vpop3d.app import collectoradmin
from vpop3d.app.accounts import AdminError
from vpop3d.app.collectorroute import DEFAULT_ORDER, RoutingOptions, Slot
from vpop3d.app.collectors import HOLD_OBSOLETE_DAYS, QUERY_DELAY_DAYS
from vpop3d.app.odmr import ODMR_PORT
from vpop3d.store import collectors as repo
from vpop3d.store import connectors
from webadmin.forms import arg as form_arg
from webadmin.forms import flag
from webadmin.guard import Viewer, Web, json_body
from webadmin.views_mail import sentence

_log = Logger()

KIND_LABELS = {
    "pop3": "Download from a POP3 Server",
    "smtp-feed": "Incoming SMTP Mail Feed",
    "odmr": "ODMR (ATRN) Mail Collection",
}  # seed-3 §18 exact labels
TLS_LABELS = {
    "none": "None",
    "ssl": "SSL (TLS from the first byte, port 995)",
    "stls": "STLS (required: refuse if the server lacks it)",
    "stls-optional": "STLS if available",
}
AUTH_LABELS = {"plain": "Plain Text", "apop": "APOP", "cram-md5": "CRAM-MD5"}
ROUTING_LABELS = {
    "headers": "Route by parsing message headers",
    "user": "Send all messages to a specified user/list",
    "server": "Forward all messages to another LAN mail server using SMTP",
}
ERROR_LABELS = {
    "admin": "Send an Error Message to Main Administrator (including the incoming message)",
    "admin-message": "Send the Incoming Message to Main Administrator",
    "address": "Send an Error Message to:",
    "address-message": "Send the Incoming Message to:",
    "bounce": "Bounce to sender and don't keep local copy",
    "ignore": "Ignore",
}
READ_LABELS = {"forwards": "Forwards", "reversed": "Reversed", "all": "All"}
SLOT_LABELS = {
    "special": "Special Headers",
    "standard": "Standard Headers (To, Cc etc)",
    "received": "Received: Headers",
    "stop-if-found": "Stop Processing if any recipients found",
    "stop": "Stop Processing",
}
STATE_LABELS = {
    "seen": "seen, not downloaded",
    "downloaded": "downloaded",
    "error": "downloaded (routing error)",
    "ignored": "left on server (rule: Ignore)",
    "queried": "awaiting decision (rule: Query)",
    "rejected": "rejected (rule: Reject)",
    "too_big": "too big, left on server",
}
CONDITION_ROWS = 3  # blank condition rows offered below a rule's own
MAX_ID = 2**31 - 1  # larger path ids name nothing (and would overflow the store's INTEGER)


def _safe(number: int) -> int:
    return number if 0 < number <= MAX_ID else 0


def arg(request: Request, name: str, default: str = "") -> str:
    """A form field without NUL characters (the store cannot hold them)."""
    return form_arg(request, name, default).replace("\x00", "")


def args(request: Request, name: str) -> list[str]:
    """Every value of a repeated form field, decoded, without NULs."""
    values = request.args.get(name.encode(), [])
    return [v.decode("utf-8", "replace").replace("\x00", "") for v in values]


class FormProblem(Exception):
    """A form value the admin must correct (the text says how)."""


class _Reader:
    """Reads one form, noting the first value the admin must correct; a bad number
    keeps its text so the re-shown form has what was typed."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.problem = ""

    def number(self, name: str, label: str, default: int | None) -> Any:
        text = arg(self.request, name).strip()
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            self.problem = self.problem or f"{label} must be a whole number, not {text[:20]!r}."
            return text


def _routing_options(request: Request) -> str:
    order = [arg(request, f"order{i}", DEFAULT_ORDER[i].value) for i in range(5)]
    if any(slot not in SLOT_LABELS for slot in order):
        raise FormProblem("Choose each Header Processing Order slot from the list.")
    reads = (arg(request, "read_special", "forwards"), arg(request, "read_received", "reversed"))
    if any(read not in READ_LABELS for read in reads):
        raise FormProblem("Choose Forwards, Reversed or All for the header reading order.")
    special = [line.strip() for line in arg(request, "special").splitlines() if line.strip()]
    return json.dumps(
        {
            "special": special,
            "read_special": reads[0],
            "read_received": reads[1],
            "ignore_resent": flag(request, "ignore_resent"),
            "received_need_at": flag(request, "received_need_at"),
            "standard_need_at": flag(request, "standard_need_at"),
            "disable_implied": flag(request, "disable_implied"),
            "ignore_from_line": flag(request, "ignore_from_line"),
            "order": order,
        }
    )


def form_fields(request: Request, kind: str) -> tuple[dict[str, Any], str]:
    """The collector settings the form of ``kind`` carries, and the first problem."""
    reader = _Reader(request)
    try:
        options = _routing_options(request) if kind == "pop3" else "{}"
    except FormProblem as exc:
        reader.problem, options = str(exc), "{}"
    chosen = args(request, "connection")
    fields: dict[str, Any] = {
        "name": arg(request, "name").strip(),
        "enabled": flag(request, "enabled"),
        "priority": reader.number("priority", "Priority", 0),
        "connection_ids": ",".join(c for c in chosen if c),
    }
    if kind == "pop3":
        fields.update(
            server=arg(request, "server").strip(),
            port=reader.number("port", "Port", 110),
            tls_mode=arg(request, "tls_mode", "none"),
            tls_verify=not flag(request, "tls_insecure"),
            auth_method=arg(request, "auth_method", "plain"),
            username=arg(request, "username").strip(),
            password=arg(request, "password"),
            leave_days=reader.number("leave_days", "Leave Messages on Server", 0),
            delete_when_deleted_locally=flag(request, "delete_when_deleted_locally"),
            max_messages=reader.number("max_messages", "Maximum messages per session", 0),
            max_size_kb=reader.number("max_size_kb", "Maximum Message Size", 0),
            use_rules=flag(request, "use_rules"),
            remove_duplicates=flag(request, "remove_duplicates"),
            routing=arg(request, "routing", "headers"),
            accepted_domains=arg(request, "accepted_domains").strip(),
            target_user=arg(request, "target_user").strip(),
            target_address=arg(request, "target_address").strip(),
            target_server=arg(request, "target_server").strip(),
            routing_options=options,
            error_action=arg(request, "error_action", "admin"),
            error_address=arg(request, "error_address").strip(),
            error_also_bounce=flag(request, "error_also_bounce"),
            error_bounce_spam_score=reader.number(
                "error_bounce_spam_score", "The spam score that stops bounces", None
            ),
        )
    elif kind == "smtp-feed":
        etrn = flag(request, "use_etrn")
        fields.update(
            accepted_domains=arg(request, "accepted_domains").strip(),
            wait_seconds=reader.number("wait_seconds", "The wait for incoming SMTP", 20),
            etrn_server=arg(request, "etrn_server").strip() if etrn else "",
            etrn_argument=arg(request, "etrn_argument").strip() if etrn else "",
        )
    elif kind == "odmr":
        fields.update(
            server=arg(request, "server").strip(),
            port=reader.number("port", "Port", ODMR_PORT),
            username=arg(request, "username").strip(),
            password=arg(request, "password"),
            odmr_domains=arg(request, "odmr_domains").strip(),
        )
    return fields, reader.problem


def defaults(kind: str, connection_ids: list[int]) -> dict[str, Any]:
    """A new collector's values: the spec's defaults (seed-3 §2.2, §3, §5.4, §8)."""
    return {
        "id": None,
        "name": "",
        "kind": kind,
        "enabled": True,
        "priority": 0,
        "connection_ids": ",".join(str(i) for i in connection_ids),
        "server": "",
        "port": ODMR_PORT if kind == "odmr" else 110,
        "tls_mode": "none",
        "tls_verify": True,
        "auth_method": "plain",
        "username": "",
        "has_password": False,
        "leave_days": 0,
        "delete_when_deleted_locally": False,
        "max_messages": 0,
        "max_size_kb": 0,
        "use_rules": False,
        "remove_duplicates": False,
        "routing": "headers",
        "accepted_domains": "",
        "target_user": "",
        "target_address": "",
        "target_server": "",
        "routing_options": "{}",
        "error_action": "admin",
        "error_address": "",
        "error_also_bounce": False,  # seed-3 §6: off, POP3-time bounces are backscatter
        "error_bounce_spam_score": None,
        "etrn_server": "",
        "etrn_argument": "",
        "wait_seconds": 20,
        "odmr_domains": "",
        "last_result": "",
        "last_run_at": None,
    }


@dataclass(frozen=True, slots=True)
class EditPage:
    """What the edit template needs beside the collector's values."""

    connections: list[dict[str, Any]]
    chosen: set[int]
    options: RoutingOptions


def _page_data(values: dict[str, Any], connections: list[dict[str, Any]]) -> EditPage:
    chosen = {
        int(p)
        for p in str(values.get("connection_ids") or "").split(",")
        if p.isascii() and p.isdigit()
    }
    try:
        options = RoutingOptions.from_json(str(values.get("routing_options") or "{}"))
    except ValueError:
        options = RoutingOptions()
    return EditPage(connections, chosen, options)


def when(stamp: float | None) -> str:
    if not stamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(stamp)))


async def collect_now(web: Web, collector_id: int, name: str) -> str:
    """Run the collector in this server if it has the runner, else ask the server
    that does (the setting the collector service polls, as the CLI does)."""
    runner = web.context.extras.get("collectors")
    if runner is not None and callable(getattr(runner, "run", None)):
        running = runner.run(collector_id)
        running.addErrback(lambda f: _log.failure("collect now failed", f))
        return f"Collecting now with {name}: reload this page for the result."
    await web.db.write(collectoradmin.request_run, str(collector_id), time.time())
    return f"{name} will collect within a few seconds: reload this page for the result."


def register(app: Klein, web: Web) -> None:
    def render(request: Request, template: str, viewer: Viewer, **values: Any) -> bytes:
        return web.renderer.page(
            template,
            viewer=viewer,
            flashes=web.take_flash(viewer),
            section="connectors",  # Mail Collectors are part of Mail Connectors (seed-3)
            kinds=KIND_LABELS,
            when=when,
            **({"page_tab": "list"} | values),
        )

    def edit_page(
        request: Request, viewer: Viewer, values: dict[str, Any], page: EditPage, error: str
    ) -> bytes:
        return render(
            request,
            "collector_edit.html",
            viewer,
            c=values,
            page=page,
            error=error,
            tls=TLS_LABELS,
            auths=AUTH_LABELS,
            routings=ROUTING_LABELS,
            errors=ERROR_LABELS,
            reads=READ_LABELS,
            slots=SLOT_LABELS,
            order=[slot.value for slot in page.options.order]
            + [Slot.STOP.value] * (5 - len(page.options.order)),
        )

    @app.route("/admin/collectors.html", methods=["GET"])
    async def collectors_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rows = await web.db.read(collectoradmin.list_collectors)
        return render(request, "collectors.html", viewer, rows=rows, page_tab="list")

    @app.route("/admin/collectors/new.html", methods=["GET", "POST"])
    async def new_collector(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        kind = arg(request, "kind", "pop3")
        if kind not in KIND_LABELS:
            kind = "pop3"
        connections = await web.db.read(connectors.list_connections)
        values = defaults(kind, [int(c["id"]) for c in connections][:1])
        values["name"] = arg(request, "name").strip()
        error = ""
        if request.method == b"POST":
            fields: dict[str, Any] = {}
            try:
                fields, problem = form_fields(request, kind)
                if problem:
                    raise FormProblem(problem)
                name = fields.pop("name")
                collector_id = await web.db.write(
                    collectoradmin.create_collector, name, kind=kind, **fields
                )
            except (FormProblem, AdminError) as exc:
                error = sentence(exc)
                fields.pop("password", None)
                values.update(fields)
                request.setResponseCode(400)
            else:
                web.flash(viewer, "ok", f"Mail Collector {name} added.")
                raise web.redirect(request, f"/admin/collectors/{collector_id}/edit.html")
        return edit_page(request, viewer, values, _page_data(values, connections), error)

    @app.route("/admin/collectors/<int:collector_id>/edit.html", methods=["GET", "POST"])
    async def edit_collector(request: Request, collector_id: int) -> bytes:
        collector_id = _safe(collector_id)
        viewer = await web.admin_page(request)
        try:
            values = await web.db.read(collectoradmin.collector_row, collector_id)
        except AdminError as exc:
            request.setResponseCode(404)
            return web.renderer.page("refused.html", viewer=viewer, message=sentence(exc))
        connections = await web.db.read(connectors.list_connections)
        error = ""
        if request.method == b"POST":
            fields: dict[str, Any] = {}
            try:
                fields, problem = form_fields(request, str(values["kind"]))
                if problem:
                    raise FormProblem(problem)
                await web.db.write(collectoradmin.update_collector, collector_id, **fields)
            except (FormProblem, AdminError) as exc:
                error = sentence(exc)
                fields.pop("password", None)
                values.update(fields)
                request.setResponseCode(400)
            else:
                web.flash(viewer, "ok", f"Mail Collector {fields['name']} saved.")
                raise web.redirect(request, f"/admin/collectors/{collector_id}/edit.html")
        return edit_page(request, viewer, values, _page_data(values, connections), error)

    @app.route("/admin/collectors/<int:collector_id>/delete", methods=["POST"])
    async def delete_collector(request: Request, collector_id: int) -> bytes:
        collector_id = _safe(collector_id)
        viewer = await web.admin_page(request)
        try:
            name = await web.db.write(collectoradmin.delete_collector, collector_id)
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", f"Mail Collector {name} deleted.")
        raise web.redirect(request, "/admin/collectors.html")

    @app.route("/admin/collectors/<int:collector_id>/run", methods=["POST"])
    async def run_collector(request: Request, collector_id: int) -> bytes:
        collector_id = _safe(collector_id)
        viewer = await web.admin_page(request)
        back = arg(request, "back")
        target = back if back.startswith("/admin/collectors") else "/admin/collectors.html"
        row = await web.db.read(repo.by_id, collector_id)
        if row is None:
            web.flash(viewer, "error", f"No collector with id {collector_id}.")
        else:
            web.flash(viewer, "ok", await collect_now(web, collector_id, str(row["name"])))
        raise web.redirect(request, target)

    @app.route("/admin/collectors/<int:collector_id>/messages.html", methods=["GET"])
    async def messages_tab(request: Request, collector_id: int) -> bytes:
        collector_id = _safe(collector_id)
        viewer = await web.admin_page(request)
        row = await web.db.read(repo.by_id, collector_id)
        if row is None:
            request.setResponseCode(404)
            return web.renderer.page(
                "refused.html", viewer=viewer, message=f"No collector with id {collector_id}."
            )
        rows = await web.db.read(collectoradmin.uidl_rows, str(collector_id))
        return render(
            request,
            "collector_messages.html",
            viewer,
            c=row,
            rows=rows,
            states=STATE_LABELS,
            queried=[r for r in rows if r["disposition"] == "queried" and not r["deleted"]],
        )

    @app.route("/admin/collectors/<int:collector_id>/messages/reset", methods=["POST"])
    async def reset_messages(request: Request, collector_id: int) -> bytes:
        collector_id = _safe(collector_id)
        viewer = await web.admin_page(request)
        key = arg(request, "uidl")
        try:
            if key:
                await web.db.write(collectoradmin.forget_uidl, collector_id, key)
                done = f"Message {key} forgotten: it is downloaded again if still on the server."
            else:
                count = await web.db.write(collectoradmin.reset_uidls, str(collector_id))
                done = (
                    f"{count} message(s) forgotten: the next collection downloads "
                    "everything still on the server."
                )
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", done)
        raise web.redirect(request, f"/admin/collectors/{collector_id}/messages.html")

    @app.route("/admin/collectors/<int:collector_id>/messages/mark", methods=["POST"])
    async def mark_message(request: Request, collector_id: int) -> bytes:
        collector_id = _safe(collector_id)
        viewer = await web.admin_page(request)
        key = arg(request, "uidl")
        what = arg(request, "what")
        marks = {
            "get": (True, False, "downloaded at the next collection"),
            "del": (False, True, "deleted from the server at the next collection"),
            "clear": (False, False, "left as it is"),
        }
        if what not in marks:
            web.flash(viewer, "error", "Choose Download, Delete or Clear for the message.")
        else:
            get, dele, done = marks[what]
            try:
                if key:
                    await web.db.write(
                        collectoradmin.mark_uidl, collector_id, key, get=get, dele=dele
                    )
                    text = f"Message {key} will be {done}."
                else:  # the column headers: every message still at the server
                    count = await web.db.write(
                        collectoradmin.mark_all, collector_id, get=get, dele=dele
                    )
                    text = f"{count} message(s) will be {done}."
            except AdminError as exc:
                web.flash(viewer, "error", sentence(exc))
            else:
                web.flash(viewer, "ok", text)
        raise web.redirect(request, f"/admin/collectors/{collector_id}/messages.html")

    @app.route("/admin/collectors/rules.html", methods=["GET"])
    async def rules_page(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        rules = await web.db.read(collectoradmin.rule_list)
        editing = arg(request, "edit")
        current = next((r for r in rules if str(r["id"]) == editing), None)
        return _rules_page(request, viewer, rules, current, "")

    def _rules_page(
        request: Request,
        viewer: Viewer,
        rules: list[dict[str, Any]],
        current: dict[str, Any] | None,
        error: str,
    ) -> bytes:
        rule = current or {
            "id": None,
            "name": "",
            "action": "download",
            "targets": "",
            "header_line": "",
            "match_all": True,
            "conditions": [],
        }
        blanks = [{"field": "", "op": "contains", "data": "", "not": False}] * CONDITION_ROWS
        return render(
            request,
            "collector_rules.html",
            viewer,
            page_tab="rules",
            rules=rules,
            unclosed=collectoradmin.open_ifs(rules),
            query_delay=web.settings.get(QUERY_DELAY_DAYS, 14),
            hold_days=web.settings.get(HOLD_OBSOLETE_DAYS, 3),
            rule=rule,
            rows=list(rule["conditions"]) + blanks,
            error=error,
            actions=collectoradmin.RULE_ACTIONS,
            operators=collectoradmin.RULE_OPERATORS,
            pseudo=collectoradmin.PSEUDO_FIELDS,
        )

    @app.route("/admin/collectors/rules/save", methods=["POST"])
    async def save_rule(request: Request) -> bytes:
        viewer = await web.admin_page(request)
        fields = args(request, "cond_field")
        ops = args(request, "cond_op")
        data = args(request, "cond_data")
        negated = set(args(request, "cond_not"))
        conditions = [
            {
                "field": field.strip(),
                "op": ops[i] if i < len(ops) else "contains",
                "data": data[i] if i < len(data) else "",
                "not": str(i) in negated,
            }
            for i, field in enumerate(fields)
            if field.strip()
        ]
        rule_text = arg(request, "id")
        rule_id = _safe(int(rule_text)) if rule_text.isascii() and rule_text.isdigit() else None
        values = {
            "name": arg(request, "name"),
            "action": arg(request, "action", "download"),
            "targets": arg(request, "targets"),
            "header_line": arg(request, "header_line"),
            "match_all": arg(request, "match", "all") != "any",
            "conditions": conditions,
        }
        try:
            await web.db.write(collectoradmin.save_rule, rule_id, **values)
        except AdminError as exc:
            request.setResponseCode(400)
            rules = await web.db.read(collectoradmin.rule_list)
            return _rules_page(request, viewer, rules, {"id": rule_id, **values}, sentence(exc))
        label = f" {values['name']}" if values["name"] else ""
        web.flash(viewer, "ok", f"Download rule{label} saved.")
        raise web.redirect(request, "/admin/collectors/rules.html")

    @app.route("/admin/collectors/rules/<int:rule_id>/delete", methods=["POST"])
    async def delete_rule(request: Request, rule_id: int) -> bytes:
        rule_id = _safe(rule_id)
        viewer = await web.admin_page(request)
        try:
            await web.db.write(collectoradmin.delete_rule, rule_id)
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        else:
            web.flash(viewer, "ok", "Download rule deleted.")
        raise web.redirect(request, "/admin/collectors/rules.html")

    @app.route("/admin/collectors/rules/<int:rule_id>/move", methods=["POST"])
    async def move_rule(request: Request, rule_id: int) -> bytes:
        rule_id = _safe(rule_id)
        viewer = await web.admin_page(request)
        step = -1 if arg(request, "dir") == "up" else 1
        try:
            await web.db.write(collectoradmin.move_rule, rule_id, step)
        except AdminError as exc:
            web.flash(viewer, "error", sentence(exc))
        raise web.redirect(request, "/admin/collectors/rules.html")

    @app.route("/admin/collectors/settings", methods=["POST"])
    async def collector_settings(request: Request) -> bytes:
        """The global "Query Download Delay - X days" and "Hold Obsolete UIDLs for X
        days" (seed-6 L10947-10967; seed-7 names them)."""
        viewer = await web.admin_page(request)
        reader = _Reader(request)
        delay = reader.number("query_delay", "The Query Download Delay", 14)
        hold = reader.number("hold_days", "Hold Obsolete UIDLs", 3)
        problem = reader.problem
        if not problem and not (0 <= delay <= 3650 and 0 <= hold <= 3650):
            problem = "Give the days as a whole number from 0 to 3650."
        if problem:
            web.flash(viewer, "error", problem)
        else:
            await web.settings.put(QUERY_DELAY_DAYS, delay)
            await web.settings.put(HOLD_OBSOLETE_DAYS, hold)
            web.flash(viewer, "ok", "Collector settings saved.")
        raise web.redirect(request, "/admin/collectors/rules.html")

    register_api(app, web)


# ---------------------------------------------------------------- JSON API (/api/v1)


def _collector_json(c: collectoradmin.CollectorSummary) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "kind": c.kind,
        "enabled": c.enabled,
        "priority": c.priority,
        "server": c.where,
        "last_result": c.last_result,
        "last_run_at": c.last_run_at,
    }


def _uidl_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "uidl": str(row["uidl"]),
        "state": "deleted" if row["deleted"] else str(row["disposition"]),
        "first_seen": float(row["first_seen"]),
        "last_seen": float(row["last_seen"]),
        "retrieved_at": None if row["retrieved_at"] is None else float(row["retrieved_at"]),
        "subject": str(row["subject"]),
        "sender": str(row["sender"]),
        "get": bool(row["get_flag"]),
        "del": bool(row["del_flag"]),
    }


def register_api(app: Klein, web: Web) -> None:
    """Collectors for scripts: list, the Messages tab, reset, collect now."""

    def missing(request: Request, collector_id: int) -> bytes:
        return json_body(request, 404, {"error": f"No collector with id {collector_id}."})

    @app.route("/api/v1/collectors", methods=["GET"])
    async def api_collectors(request: Request) -> bytes:
        await web.api_admin(request)
        rows = await web.db.read(collectoradmin.list_collectors)
        return json_body(request, 200, [_collector_json(c) for c in rows])

    @app.route("/api/v1/collectors/<int:collector_id>/messages", methods=["GET"])
    async def api_messages(request: Request, collector_id: int) -> bytes:
        await web.api_admin(request)
        collector_id = _safe(collector_id)
        if await web.db.read(repo.by_id, collector_id) is None:
            return missing(request, collector_id)
        rows = await web.db.read(collectoradmin.uidl_rows, str(collector_id))
        return json_body(request, 200, [_uidl_json(r) for r in rows])

    @app.route("/api/v1/collectors/<int:collector_id>/messages", methods=["DELETE"])
    async def api_reset(request: Request, collector_id: int) -> bytes:
        await web.api_admin(request)
        collector_id = _safe(collector_id)
        if await web.db.read(repo.by_id, collector_id) is None:
            return missing(request, collector_id)
        count = await web.db.write(collectoradmin.reset_uidls, str(collector_id))
        return json_body(request, 200, {"forgotten": int(count)})

    @app.route("/api/v1/collectors/<int:collector_id>/run", methods=["POST"])
    async def api_run(request: Request, collector_id: int) -> bytes:
        await web.api_admin(request)
        collector_id = _safe(collector_id)
        row = await web.db.read(repo.by_id, collector_id)
        if row is None:
            return missing(request, collector_id)
        text = await collect_now(web, collector_id, str(row["name"]))
        return json_body(request, 202, {"started": True, "message": text})


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Collector": {
        "type": "object",
        "required": ["id", "name", "kind", "enabled", "priority", "server", "last_result"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": list(KIND_LABELS)},
            "enabled": {"type": "boolean"},
            "priority": {"type": "integer"},
            "server": {"type": "string"},
            "last_result": {"type": "string"},
            "last_run_at": {"type": "number", "nullable": True},
        },
    },
    "CollectorMessage": {
        "type": "object",
        "required": ["uidl", "state", "first_seen", "last_seen", "get", "del"],
        "properties": {
            "uidl": {"type": "string"},
            "state": {"type": "string"},
            "first_seen": {"type": "number"},
            "last_seen": {"type": "number"},
            "retrieved_at": {"type": "number", "nullable": True},
            "subject": {"type": "string"},
            "sender": {"type": "string"},
            "get": {"type": "boolean"},
            "del": {"type": "boolean"},
        },
    },
}


def openapi_paths(op: Any, json_response: Any, errors: Any, path_param: Any) -> dict[str, Any]:
    """The collector operations for ``webadmin.openapi`` (its helpers passed in)."""
    std = (401, 403)
    ident = [path_param("id", "integer")]
    return {
        "/collectors": {
            "get": op(
                "Mail Collectors with their last connection results",
                {"200": json_response(_array("Collector"))} | errors(*std),
            )
        },
        "/collectors/{id}/messages": {
            "parameters": ident,
            "get": op(
                "A collector's Messages tab (UIDL inventory)",
                {"200": json_response(_array("CollectorMessage"))} | errors(*std, 404),
            ),
            "delete": op(
                "Forget every UIDL: messages still at the server are downloaded again",
                {
                    "200": json_response(
                        {
                            "type": "object",
                            "required": ["forgotten"],
                            "properties": {"forgotten": {"type": "integer"}},
                        }
                    )
                }
                | errors(*std, 404),
            ),
        },
        "/collectors/{id}/run": {
            "parameters": ident,
            "post": op(
                "Collect now",
                {
                    "202": json_response(
                        {
                            "type": "object",
                            "required": ["started", "message"],
                            "properties": {
                                "started": {"type": "boolean"},
                                "message": {"type": "string"},
                            },
                        },
                        "Started (or asked of the server that runs collectors)",
                    )
                }
                | errors(*std, 404),
            ),
        },
    }
