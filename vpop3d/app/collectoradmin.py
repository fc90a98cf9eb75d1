"""Admin use cases for Mail Collectors (CLI and web admin): add, list, the Messages
tab, reset, and "collect now" requests the running server picks up.

"Collect now" from another process writes the setting ``collectors.collect_now.<id>``
(a UNIX time); :class:`~vpop3d.app.collectors.CollectorService` polls it and runs
the collector once per new value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from vpop3d.app.accounts import AdminError
from vpop3d.app.collectorroute import RoutingOptions
from vpop3d.proto.pop3.client import TLSMode
from vpop3d.store import collectors as repo
from vpop3d.store import settings as settings_repo

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
    RoutingOptions.from_json(str(fields.get("routing_options", "{}")))


def add_collector(conn: Connection, name: str, **fields: Any) -> int:
    name = name.strip()
    if not name:
        raise AdminError("a collector needs a name")
    if repo.by_name(conn, name) is not None:
        raise AdminError(f"a collector named {name!r} exists")
    _validate(fields)
    return repo.add(conn, name, **fields)


def _find(conn: Connection, name: str) -> dict[str, Any]:
    row = repo.by_id(conn, int(name)) if name.isdigit() else repo.by_name(conn, name)
    if row is None:
        raise AdminError(f"no collector {name!r}")
    return row


def list_collectors(conn: Connection) -> list[CollectorSummary]:
    out: list[CollectorSummary] = []
    for row in repo.list_all(conn):
        where = f"{row['server']}:{row['port']}" if row["kind"] == "pop3" else row["etrn_server"]
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
            port=int(port) if port.isdigit() else 110,
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
