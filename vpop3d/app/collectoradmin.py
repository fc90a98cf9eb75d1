"""Admin use cases for Mail Collectors (CLI and web admin): add, list, the Messages
tab, reset, and "collect now" requests the running server picks up.

"Collect now" from another process writes the setting ``collectors.collect_now.<id>``
(a UNIX time); :class:`~vpop3d.app.collectors.CollectorService` polls it and runs
the collector once per new value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from vpop3d.app.accounts import AdminError
from vpop3d.app.collectorroute import RoutingOptions
from vpop3d.proto.pop3.client import TLSMode
from vpop3d.store import collectors as repo
from vpop3d.store import connectors
from vpop3d.store import settings as settings_repo
from vpop3d.store.tables import collectors as collector_table

__all__ = [
    "COLLECT_NOW",
    "CollectorSummary",
    "add_collector",
    "list_collectors",
    "request_run",
    "reset_uidls",
    "uidl_rows",
]

from vpop3d.app.collectors import COLLECT_NOW

KINDS = ("pop3", "smtp-feed", "odmr")
ROUTINGS = ("headers", "user", "server")
AUTH_METHODS = ("plain", "apop", "cram-md5")
ERROR_ACTIONS = ("admin", "admin-message", "address", "address-message", "bounce", "ignore")
NUMBERS = {
    "leave_days": "Leave Messages on Server",
    "max_messages": "the maximum messages per session",
    "max_size_kb": "the maximum message size",
    "wait_seconds": "the wait for incoming SMTP",
}
MAX_WAIT_SECONDS = 3600
# Every column the admin may set (the web form and the API); the rest is run state.
EDITABLE = (
    "kind", "enabled", "priority", "connection_ids", "server", "port", "tls_mode",
    "tls_verify", "auth_method", "username", "password", "leave_days",
    "delete_when_deleted_locally", "max_messages", "max_size_kb", "use_rules",
    "remove_duplicates", "routing", "accepted_domains", "target_user", "target_address",
    "target_server", "routing_options", "error_action", "error_address", "etrn_server",
    "etrn_argument", "wait_seconds", "odmr_domains", "error_also_bounce",
    "error_bounce_spam_score",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CollectorSummary:
    id: int
    name: str
    kind: str
    enabled: bool
    priority: int
    where: str
    routing: str
    last_result: str
    last_run_at: float | None = None


def _validate(fields: dict[str, Any]) -> None:
    kind = fields.get("kind", "pop3")
    if kind not in KINDS:
        raise AdminError(f"collector type must be one of {', '.join(KINDS)}")
    if "tls_mode" in fields:
        try:
            TLSMode(fields["tls_mode"])
        except ValueError:
            modes = ", ".join(m.value for m in TLSMode)
            raise AdminError(f"encryption must be one of {modes}") from None
    if fields.get("auth_method", "plain") not in AUTH_METHODS:
        raise AdminError(f"authentication must be one of {', '.join(AUTH_METHODS)}")
    if fields.get("error_action", "admin") not in ERROR_ACTIONS:
        raise AdminError(f"routing error action must be one of {', '.join(ERROR_ACTIONS)}")
    routing = fields.get("routing", "headers")
    if routing not in ROUTINGS:
        raise AdminError(f"routing must be one of {', '.join(ROUTINGS)}")
    if kind == "pop3" and not fields.get("server"):
        raise AdminError("a POP3 collector needs a server")
    if routing == "user" and not fields.get("target_user"):
        raise AdminError("routing to a single user needs a target user")
    if routing == "server" and not (fields.get("target_address") and fields.get("target_server")):
        raise AdminError("routing to another server needs a target address and server")
    if routing == "headers" and kind == "pop3" and not fields.get("accepted_domains"):
        raise AdminError("routing by message headers needs Accepted Domains")
    accepted = str(fields.get("accepted_domains", ""))
    if any(entry.strip() == "*" for entry in accepted.split(";")):
        raise AdminError("do not use '*' as an Accepted Domain (seed-3 §5.1)")
    try:
        RoutingOptions.from_json(str(fields.get("routing_options", "{}")))
    except (ValueError, TypeError):
        raise AdminError("the routing options are not valid") from None
    _validate_more(kind, fields)


INT_MAX = 2**31 - 1


def _check_sizes(fields: dict[str, Any]) -> None:
    """Text that fits its column and holds no NUL; numbers the store can hold."""
    for column in collector_table.columns:
        value = fields.get(column.name)
        if isinstance(value, str):
            if "\x00" in value:
                raise AdminError("text must not contain NUL characters")
            length = getattr(column.type, "length", None)
            if length is not None and len(value) > length:
                raise AdminError(f"the {column.name.replace('_', ' ')} is too long")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_MAX:
            raise AdminError(f"the {column.name.replace('_', ' ')} is too large")


def _validate_more(kind: str, fields: dict[str, Any]) -> None:
    """Numbers in range and what each collector type cannot work without."""
    _check_sizes(fields)
    port = fields.get("port", 110)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise AdminError("the port must be a number from 1 to 65535")
    for key, label in NUMBERS.items():
        value = fields.get(key, 0)
        if not isinstance(value, int) or value < 0:
            raise AdminError(f"{label} must be a whole number, 0 or more")
    if not isinstance(fields.get("priority", 0), int):
        raise AdminError("the priority must be a whole number")
    if int(fields.get("wait_seconds", 0)) > MAX_WAIT_SECONDS:
        raise AdminError(f"the wait for incoming SMTP can be at most {MAX_WAIT_SECONDS} seconds")
    if (
        str(fields.get("error_action", "admin")).startswith("address")
        and not str(fields.get("error_address", "")).strip()
    ):
        raise AdminError("sending routing errors to an address needs that address")
    _check_spam_score(fields.get("error_bounce_spam_score"))
    if kind == "smtp-feed" and bool(fields.get("etrn_server")) != bool(fields.get("etrn_argument")):
        raise AdminError("ETRN needs both the server to send it to and its parameter")
    if kind == "odmr":
        if not fields.get("server"):
            raise AdminError("an ODMR collector needs the ISP's ODMR server")
        if not fields.get("username"):
            raise AdminError("an ODMR collector needs the account username")
        if not str(fields.get("odmr_domains", "")).strip():
            raise AdminError("an ODMR collector needs at least one domain to ask for")


MAX_SPAM_SCORE = 1000


def _check_spam_score(value: Any) -> None:
    """seed-3 §6 "Don't generate bounce messages if spam score >= N": N is a whole
    number 0..1000, or None for off."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SPAM_SCORE:
        raise AdminError(
            f"the spam score that stops bounces must be a whole number from 0 to "
            f"{MAX_SPAM_SCORE}, or blank for no limit"
        )


def add_collector(conn: Connection, name: str, **fields: Any) -> int:
    name = name.strip()
    if not name:
        raise AdminError("a collector needs a name")
    _check_sizes({"name": name})
    if repo.by_name(conn, name) is not None:
        raise AdminError(f"a collector named {name!r} exists")
    _validate(fields)
    return repo.add(conn, name, **fields)


def _find(conn: Connection, name: str) -> dict[str, Any]:
    numeric = name.isascii() and name.isdigit() and len(name) < 10
    row = repo.by_id(conn, int(name)) if numeric else repo.by_name(conn, name)
    if row is None:
        raise AdminError(f"no collector {name!r}")
    return row


def list_collectors(conn: Connection) -> list[CollectorSummary]:
    out: list[CollectorSummary] = []
    for row in repo.list_all(conn):
        if row["kind"] == "pop3":
            where = f"{row['server']}:{row['port']}"
        elif row["kind"] == "odmr":
            where = (
                str(row["server"])
                if ":" in str(row["server"])
                else f"{row['server']}:{row['port']}"
            )
        else:
            where = str(row["etrn_server"] or "")
        out.append(
            CollectorSummary(
                id=int(row["id"]),
                name=str(row["name"]),
                kind=str(row["kind"]),
                enabled=bool(row["enabled"]),
                priority=int(row["priority"]),
                where=str(where),
                routing=str(row["routing"]),
                last_result=str(row["last_result"]),
                last_run_at=row["last_run_at"],
            )
        )
    return out


def uidl_rows(conn: Connection, name: str) -> list[dict[str, Any]]:
    """The Messages tab (seed-3 §7), oldest first."""
    row = _find(conn, name)
    rows = list(repo.uidls(conn, int(row["id"])).values())
    return sorted(rows, key=lambda r: (r["first_seen"], r["id"]))


def reset_uidls(conn: Connection, name: str) -> int:
    return repo.reset_uidls(conn, int(_find(conn, name)["id"]))


def request_run(conn: Connection, name: str, now: float) -> int:
    """Ask the running server to collect now; returns the collector id."""
    collector_id = int(_find(conn, name)["id"])
    settings_repo.put(conn, f"{COLLECT_NOW}{collector_id}", now)
    return collector_id


WIZARD_KEY = "collectors.wizard"  # written by the Setup Wizard (vpop3d.app.wizard)
WIZARD_DONE = "collectors.wizard_imported"  # the spec last turned into a collector
WIZARD_NAME = "Setup Wizard"
_WIZARD_ROUTING = {"parse": "headers", "single": "user", "other_server": "server"}


def _wizard_fields(spec: dict[str, Any]) -> dict[str, Any]:
    kind = {"smtp": "smtp-feed"}.get(str(spec.get("kind")), str(spec.get("kind")))
    fields: dict[str, Any] = {
        "kind": kind,
        "enabled": bool(spec.get("enabled", True)),
        "connection_ids": str(spec.get("connection_id", "")),
    }
    if kind == "pop3":
        server = str(spec.get("server", ""))
        host, _sep, port = server.partition(":")
        fields.update(
            server=host,
            port=int(port) if port.isascii() and port.isdigit() else 110,
            auth_method=str(spec.get("auth", "plain")),
            username=str(spec.get("username", "")),
            password=str(spec.get("password", "")),
            routing=_WIZARD_ROUTING.get(str(spec.get("routing")), "headers"),
            accepted_domains=";".join(spec.get("accepted_domains") or []),
            target_user=str(spec.get("target_user", "")),
            target_address=str(spec.get("target_address", "")),
            target_server=str(spec.get("target_server", "")),
        )
    elif kind == "smtp-feed":
        fields.update(
            accepted_domains=";".join(spec.get("domains") or []),
            wait_seconds=int(spec.get("wait_seconds", 20)),
            etrn_server=str(spec.get("etrn_server", "")) if spec.get("use_etrn") else "",
            etrn_argument=str(spec.get("etrn_parameters", "")) if spec.get("use_etrn") else "",
        )
    return fields


def import_wizard(conn: Connection) -> int | None:
    """Turn the Setup Wizard's collector (a setting) into the collector row named
    "Setup Wizard", once per wizard run; returns its id when something changed."""
    specs = settings_repo.get(conn, WIZARD_KEY, None)
    if not isinstance(specs, list) or not specs or not isinstance(specs[0], dict):
        return None
    if settings_repo.get(conn, WIZARD_DONE, None) == specs:
        return None
    fields = _wizard_fields(specs[0])
    existing = repo.by_name(conn, WIZARD_NAME)
    if existing is None:
        collector_id = repo.add(conn, WIZARD_NAME, **fields)
    else:
        collector_id = int(existing["id"])
        repo.update_fields(conn, collector_id, **fields)
    settings_repo.put(conn, WIZARD_DONE, specs)
    return collector_id


# ---------------------------------------------------------------- web admin edits


def _check_connections(conn: Connection, fields: dict[str, Any]) -> None:
    """ "Use this Mail Collector with these Connections (At least one must be selected)"
    (seed-3 §2.4), once any Connection exists; unknown ids are refused."""
    if "connection_ids" not in fields:
        return
    known = {int(row["id"]) for row in connectors.list_connections(conn)}
    text = str(fields["connection_ids"] or "")
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if any(not (part.isascii() and part.isdigit()) or int(part) not in known for part in chosen):
        raise AdminError("choose the Connections from the list")
    if known and not chosen:
        raise AdminError("choose at least one Connection for this collector")


def _editable(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(EDITABLE) - {"name"}
    if unknown:
        raise AdminError(f"unknown collector setting {sorted(unknown)[0]!r}")
    return {key: value for key, value in fields.items() if key in EDITABLE}


def create_collector(conn: Connection, name: str, **fields: Any) -> int:
    """Add from the web admin: checked like ``add_collector``, plus the Connections."""
    fields = _editable(fields)
    _check_connections(conn, fields)
    return add_collector(conn, name, **fields)


def collector_row(conn: Connection, collector_id: int) -> dict[str, Any]:
    """One collector's settings for the edit form; the password never leaves."""
    row = repo.by_id(conn, collector_id)
    if row is None:
        raise AdminError(f"no collector with id {collector_id}")
    row["has_password"] = bool(row["password"])
    row["password"] = ""
    return row


def update_collector(conn: Connection, collector_id: int, **fields: Any) -> None:
    """Change a collector; a ``password`` of None or "" keeps the stored one.

    The merged settings are checked as a whole before anything is written, so a
    refused change leaves the collector exactly as it was."""
    row = repo.by_id(conn, collector_id)
    if row is None:
        raise AdminError(f"no collector with id {collector_id}")
    name = str(fields.pop("name", row["name"])).strip()
    if not name:
        raise AdminError("a collector needs a name")
    _check_sizes({"name": name})
    other = repo.by_name(conn, name)
    if other is not None and int(other["id"]) != collector_id:
        raise AdminError(f"a collector named {name!r} exists")
    if not fields.get("password"):
        fields.pop("password", None)
    fields = _editable(fields)
    _check_connections(conn, fields)
    merged = {key: row[key] for key in EDITABLE} | fields
    _validate(merged)
    repo.update_fields(conn, collector_id, name=name, **fields)


def delete_collector(conn: Connection, collector_id: int) -> str:
    """Remove a collector and its Messages tab; returns its name."""
    row = repo.by_id(conn, collector_id)
    if row is None:
        raise AdminError(f"no collector with id {collector_id}")
    repo.remove(conn, collector_id)
    settings_repo.remove(conn, f"{COLLECT_NOW}{collector_id}")
    return str(row["name"])


def forget_uidl(conn: Connection, collector_id: int, key: str) -> None:
    """Messages tab "reset" of one row: the message is downloaded again if still there."""
    if repo.by_id(conn, collector_id) is None:
        raise AdminError(f"no collector with id {collector_id}")
    if repo.forget_uidl(conn, collector_id, key) == 0:
        raise AdminError("that message is no longer on the Messages tab")


def mark_uidl(conn: Connection, collector_id: int, key: str, *, get: bool, dele: bool) -> None:
    """The Get/Del checkboxes (seed-3 §7): Get downloads it (again) at the next run,
    Del deletes it at the server then; Download/Delete of a queried message."""
    if repo.by_id(conn, collector_id) is None:
        raise AdminError(f"no collector with id {collector_id}")
    if repo.uidls(conn, collector_id).get(key) is None:
        raise AdminError("that message is no longer on the Messages tab")
    repo.set_flags(conn, collector_id, key, get=get, dele=dele)


def mark_all(conn: Connection, collector_id: int, *, get: bool, dele: bool) -> int:
    """The Get/Del column headers toggle every row (seed-3 §7 [L5456])."""
    if repo.by_id(conn, collector_id) is None:
        raise AdminError(f"no collector with id {collector_id}")
    return repo.set_flags_all(conn, collector_id, get=get, dele=dele)


# ---------------------------------------------------------------- Download Rules

RULE_ACTIONS = {
    "download": "Download",
    "query": "Query",
    "delete-and-warn": "Delete and Warn",
    "ignore": "Ignore",
    "redirect": "Redirect",
    "delete-silently": "Delete Silently",
    "download-and-delete": "Download and Delete",
    "redirect-query": "Redirect Query",
    "delete-and-warn-other": "Delete and Warn other user",
    "redirect-download-delete": "Redirect, Download and Delete",
    "copy": "Copy",
    "copy-query": "Copy Query",
    "delete-and-copy-warning": "Delete and copy Warning",
    "copy-download-delete": "Copy, Download and Delete",
    "headers-only": "Headers only",
    "redirect-headers-only": "Redirect Headers only",
    "copy-headers-only": "Copy Headers only",
    "reject": "Reject",
    "set-header-continue": "Set Header and Continue",
    "set-header-stop": "Set Header and Stop",
    "if": "If",
    "else": "Else",
    "endif": "EndIf",
    "stop": "Stop",
}  # seed-3 §4.3, in the manual's order
RULE_OPERATORS = (
    "contains", "equals", "not equals", "begins with", "ends with", "wildcard matches",
    "regex matches", "greater than", "greater or equal", "less than", "less or equal",
)  # fmt: skip
PSEUDO_FIELDS = (
    "Always", "TimeNow", "DayNow", "Rcpt", "Collector", "Size", "ValidRecipients",
    "InvalidRecipients", "Any",
)  # fmt: skip
_NO_CONDITIONS = {"else", "endif"}
_HEADER_NAME = re.compile(r"[!-9;-~]+")


def _check_condition(item: dict[str, Any]) -> dict[str, Any]:
    fields = [f.strip() for f in str(item.get("field", "")).split(",")]
    if not all(fields) or not all(_HEADER_NAME.fullmatch(f) for f in fields):
        raise AdminError("each condition needs a header name (e.g. Subject or To,Cc)")
    op = str(item.get("op", "contains")).lower()
    if op not in RULE_OPERATORS:
        raise AdminError(f"unknown match operator {op!r}")
    data = str(item.get("data", ""))
    if op == "regex matches":
        spec = data.strip()
        if spec.startswith("/") and spec.rfind("/") > 0:
            spec = spec[1 : spec.rfind("/")]
        try:
            re.compile(spec)
        except re.error as exc:
            raise AdminError(f"the regular expression {data!r} is not valid: {exc}") from None
    return {"field": ",".join(fields), "op": op, "data": data, "not": bool(item.get("not"))}


def _check_rule(fields: dict[str, Any]) -> dict[str, Any]:
    action = str(fields.get("action", "download"))
    if action not in RULE_ACTIONS:
        raise AdminError(f"unknown rule action {action!r}")
    raw = fields.get("conditions") or []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "[]")
        except ValueError:
            raise AdminError("the conditions are not valid") from None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise AdminError("the conditions are not valid")
    conditions = [_check_condition(item) for item in raw]
    if action in _NO_CONDITIONS and conditions:
        raise AdminError(f"{RULE_ACTIONS[action]} takes no conditions")
    targets = str(fields.get("targets", "")).strip()
    needs_targets = action.startswith(("redirect", "copy")) or action in (
        "delete-and-warn-other",
        "delete-and-copy-warning",
    )
    if needs_targets and not targets:
        raise AdminError(f"{RULE_ACTIONS[action]} needs a Redirect to / Copy to list")
    header_line = str(fields.get("header_line", "")).strip()
    if action.startswith("set-header"):
        name, colon, _value = header_line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name.strip() or " "):
            raise AdminError("Set Header needs a full header line such as 'X-Tag: 1'")
    texts = [str(fields.get(k, "")) for k in ("name", "targets", "header_line")]
    texts += [str(c[k]) for c in conditions for k in ("field", "data")]
    if any("\x00" in text for text in texts):
        raise AdminError("text must not contain NUL characters")
    return {
        "name": str(fields.get("name", "")).strip()[:200],
        "action": action,
        "targets": targets,
        "header_line": header_line,
        "match_all": bool(fields.get("match_all", True)),
        "conditions": json.dumps(conditions),
    }


def _check_balance(actions: list[str]) -> int:
    """If/Else/EndIf must nest properly (seed-3 §20.11). An Else or EndIf without its
    If is refused; an If still waiting for its EndIf is allowed, since rules are added
    one at a time (the list page warns about it). Returns the number of open Ifs."""
    depth: list[bool] = []  # per open If: has it had its Else?
    for action in actions:
        if action == "if":
            depth.append(False)
        elif action == "else":
            if not depth or depth[-1]:
                raise AdminError("an Else rule must follow an If (and only one per If)")
            depth[-1] = True
        elif action == "endif":
            if not depth:
                raise AdminError("an EndIf rule must follow an If or Else")
            depth.pop()
    return len(depth)


def open_ifs(rules: list[dict[str, Any]]) -> int:
    """How many If rules still lack their EndIf (for the editor's warning)."""
    try:
        return _check_balance([str(r["action"]).lower() for r in rules])
    except AdminError:
        return 0


def rule_list(conn: Connection) -> list[dict[str, Any]]:
    """The global Download Rules, in order, with their conditions decoded."""
    out: list[dict[str, Any]] = []
    for row in repo.list_rules(conn):
        try:
            conditions = json.loads(row["conditions"] or "[]")
        except ValueError:
            conditions = []
        out.append({**row, "conditions": conditions if isinstance(conditions, list) else []})
    return out


def _renumber(conn: Connection, ids: list[int]) -> None:
    for position, rule_id in enumerate(ids):
        repo.update_rule(conn, rule_id, position=position)


def save_rule(conn: Connection, rule_id: int | None, **fields: Any) -> int:
    """Add (``rule_id`` None: at the end) or change a rule. The whole list must stay
    balanced, or nothing is written. Changes apply at the next run (§4.1)."""
    values = _check_rule(fields)
    rows = repo.list_rules(conn)
    if rule_id is not None and not any(int(r["id"]) == rule_id for r in rows):
        raise AdminError(f"no download rule with id {rule_id}")
    actions = [
        values["action"] if int(r["id"]) == rule_id else str(r["action"]).lower() for r in rows
    ]
    if rule_id is None:
        actions.append(values["action"])
    _check_balance(actions)
    if rule_id is None:
        position = max((int(r["position"]) for r in rows), default=-1) + 1
        return repo.add_rule(conn, position=position, **values)
    repo.update_rule(conn, rule_id, **values)
    return rule_id


def delete_rule(conn: Connection, rule_id: int) -> None:
    rows = repo.list_rules(conn)
    if not any(int(r["id"]) == rule_id for r in rows):
        raise AdminError(f"no download rule with id {rule_id}")
    _check_balance([str(r["action"]).lower() for r in rows if int(r["id"]) != rule_id])
    repo.remove_rule(conn, rule_id)


def move_rule(conn: Connection, rule_id: int, step: int) -> None:
    """The up/down arrows: swap with the neighbour, if the list stays balanced."""
    ids = [int(r["id"]) for r in repo.list_rules(conn)]
    if rule_id not in ids:
        raise AdminError(f"no download rule with id {rule_id}")
    index = ids.index(rule_id)
    other = index + (1 if step > 0 else -1)
    if not 0 <= other < len(ids):
        return
    ids[index], ids[other] = ids[other], ids[index]
    actions = {int(r["id"]): str(r["action"]).lower() for r in repo.list_rules(conn)}
    _check_balance([actions[i] for i in ids])
    _renumber(conn, ids)
