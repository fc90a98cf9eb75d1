"""Administration of Connections, Mail Senders and the Connector Schedule (seed-3)
from the web admin: checked changes on top of ``store.connectors``.

Each function runs in one transaction and raises ``AdminError`` with a sentence the
admin can act on; nothing is changed then.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from vpop3d.app.accounts import AdminError
from vpop3d.app.connectors import ConfigError, parse_relay_servers
from vpop3d.store import connectors

ENCRYPTIONS = {
    "starttls_opt": "STARTTLS if offered",
    "starttls": "STARTTLS required",
    "ssl": "SSL/TLS (implicit)",
    "none": "None",
}
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _connection(conn: Connection, connection_id: int) -> dict[str, Any]:
    for row in connectors.list_connections(conn):
        if int(row["id"]) == connection_id:
            return row
    raise AdminError(f"no Connection with id {connection_id}")


def overview(conn: Connection) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each Connection with its Mail Sender (None if it has none)."""
    senders = {int(s["connection_id"]): s for s in connectors.list_senders(conn)}
    return [(c, senders.get(int(c["id"]))) for c in connectors.list_connections(conn)]


def update_sender(
    conn: Connection,
    connection_id: int,
    *,
    name: str,
    method: str,
    relay_servers: str,
    encryption: str,
    auth_required: bool,
    username: str,
    password: str | None,
) -> None:
    """Change a Connection's name and the basics of its Mail Sender (seed-3 §10).

    ``password`` None keeps the stored one (the form never shows it).
    """
    _connection(conn, connection_id)
    if not name.strip():
        raise AdminError("the Connection needs a name")
    if method not in ("relay", "direct"):
        raise AdminError("the sending method must be relay or direct")
    if encryption not in ENCRYPTIONS:
        raise AdminError("choose a session encryption from the list")
    lines = [part.strip() for part in re.split(r"[\n;,]+", relay_servers) if part.strip()]
    try:
        parse_relay_servers("\n".join(lines))
    except ConfigError as exc:
        raise AdminError(str(exc)) from None
    if auth_required and not username.strip():
        raise AdminError("enter the SMTP username, or untick SMTP authentication")
    connectors.update_connection(conn, connection_id, name=name.strip())
    fields: dict[str, Any] = {
        "method": method,
        "relay_servers": "\n".join(lines),
        "encryption": encryption,
        "auth_required": auth_required,
        "username": username.strip(),
    }
    if password is not None:
        fields["password"] = password
    connectors.update_sender(conn, connection_id, **fields)


def minutes(text: str) -> int:
    """``"09:30"`` -> 570."""
    found = _TIME.fullmatch(text.strip())
    if found is None:
        raise AdminError(f"{text.strip()!r} is not a time: use HH:MM, e.g. 09:00")
    return int(found.group(1)) * 60 + int(found.group(2))


def add_schedule_item(
    conn: Connection,
    *,
    name: str,
    connection_id: int | None,
    interval: int,
    start: str,
    end: str,
    days_mask: int,
) -> int:
    """An "every N minutes between S and E on these days" item (seed-3 §17)."""
    if connection_id is not None:
        _connection(conn, connection_id)
    if not 1 <= interval <= 1440:
        raise AdminError("the interval must be 1 to 1440 minutes")
    first, last = minutes(start), minutes(end)
    if last < first:
        raise AdminError("the end time must not be before the start time")
    if not 0 < days_mask < 128:
        raise AdminError("choose at least one day")
    return connectors.add_schedule_item(
        conn,
        name=name.strip() or "Schedule",
        use_default=connection_id is None,
        connection_ids="" if connection_id is None else str(connection_id),
        mode="every",
        interval_min=interval,
        start_min=first,
        end_min=last,
        days_mask=days_mask,
    )


def remove_schedule_item(conn: Connection, item_id: int) -> None:
    if not any(int(i["id"]) == item_id for i in connectors.list_schedule(conn)):
        raise AdminError(f"no schedule item with id {item_id}")
    connectors.remove_schedule_item(conn, item_id)
