"""Connections, Mail Senders and the schedule as typed configuration (seed-3 §0-§17).

The store keeps rows; this module turns them into :class:`SenderConfig` and
:class:`~vpop3d.core.schedule.ScheduleItem` values the queue runner works from, and
holds the small pure rules around them: relay server lists, retry gaps, the
return path (seed-3 §14), which connections "send immediately" (seed-3 §17.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from vpop3d.app.dns import Override, OverrideError, parse_overrides, parse_server
from vpop3d.core.domainfilter import FilterScript, parse_script
from vpop3d.core.schedule import ScheduleItem
from vpop3d.proto.smtp.client import TLSMode
from vpop3d.store import connectors as repo
from vpop3d.store import domains

# Settings keys (vpop3d.app.settings), with their defaults.
SCHEDULE_ENABLED = "schedule.enabled"  # False after first run (spec check 7)
SEND_IMMEDIATELY = "schedule.send_immediately"  # default True
IMMEDIATE_CONNECTIONS = "schedule.send_immediately_connections"  # list of ids, [] = first
MIN_GAP_MINUTES = "schedule.min_gap_minutes"  # default 0 (off)
RETRY_WHEN_ONLINE = "schedule.retry_when_online"  # default True: due retries go when online
DEFAULT_RETRY = (5, 10, 30, 60, 120, 240)
DEFAULT_MAX_RETRY_HOURS = 120.0  # five days


class ConfigError(ValueError):
    """A sender setting that cannot be used; the text names the setting."""


@dataclass(frozen=True, slots=True)
class RelayServer:
    host: str
    port: int = 25


@dataclass(frozen=True, slots=True)
class SenderConfig:
    """One Connection with its Mail Sender."""

    connection_id: int
    name: str
    kind: str = "lan"  # lan | command
    is_default: bool = True
    method: str = "direct"  # relay | direct
    relay_servers: tuple[RelayServer, ...] = ()
    encryption: TLSMode = TLSMode.OPTIONAL
    tls_verify: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_method: str = "auto"
    max_rcpt_msg: int = 0
    max_rcpt_session: int = 0
    max_msgs_session: int = 0
    rate_msgs: tuple[int, int] = (0, 0)  # X messages per Y minutes; 0 = off
    rate_rcpts: tuple[int, int] = (0, 0)
    dns_servers: tuple[tuple[str, int], ...] = ()
    overrides: tuple[Override, ...] = ()
    mx_threads: int = 10
    rp_mode: str = "default"
    rp_address: str = ""
    null_rp_address: str = ""
    domain_filter: FilterScript | None = None
    ehlo_name: str = ""
    smaller_first: bool = False
    reverse_order: bool = False
    retry_minutes: tuple[int, ...] = DEFAULT_RETRY
    max_retry_hours: float = DEFAULT_MAX_RETRY_HOURS
    warn_after_hours: float = 4.0
    up_command: str = ""
    down_command: str = ""
    check_command: str = ""
    fallback_id: int | None = None


def parse_relay_servers(text: str) -> tuple[RelayServer, ...]:
    """One ``host[:port]`` per line, default port 25 (seed-3 §10)."""
    servers: list[RelayServer] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if " " in line:
            raise ConfigError(f"relay server {line!r}: no spaces allowed")
        try:
            host, port, _user, _password = parse_server(line)
        except OverrideError as exc:
            raise ConfigError(f"relay server {line!r}: {exc}") from None
        servers.append(RelayServer(host, port))
    return tuple(servers)


def parse_retry_list(text: str) -> tuple[int, ...]:
    """Comma-separated minutes between attempts; the last repeats (seed-3 §15.3)."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"retry list {text!r}: use minutes like 5,10,30") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"retry list {text!r}: use minutes like 5,10,30")
    return values


def retry_delay(minutes: Sequence[int], attempts: int) -> float:
    """Seconds until the next try after ``attempts`` attempts (1 = the first failed)."""
    index = min(max(attempts, 1) - 1, len(minutes) - 1)
    return max(float(minutes[index]) * 60.0, 60.0)


def _dns_servers(text: str) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for word in text.replace(",", " ").split():
        host, port, _u, _p = parse_server(word) if ":" in word else (word, 53, None, None)
        found.append((host, 53 if port == 25 and ":" not in word else port))
    return tuple(found)


def sender_config(connection: dict[str, Any], sender: dict[str, Any]) -> SenderConfig:
    """Typed config from the two rows; raises :class:`ConfigError` for unusable values."""
    try:
        overrides = tuple(parse_overrides(sender["dns_overrides"] or ""))
    except OverrideError as exc:
        raise ConfigError(f"DNS overrides: {exc}") from None
    try:
        script = parse_script(sender["domain_filter"] or "")
    except ValueError as exc:
        raise ConfigError(f"domain filtering: {exc}") from None
    try:
        encryption = TLSMode(sender["encryption"])
    except ValueError:
        raise ConfigError(f"session encryption {sender['encryption']!r}") from None
    return SenderConfig(
        connection_id=int(connection["id"]),
        name=connection["name"],
        kind=connection["kind"],
        is_default=bool(connection["is_default"]),
        method=sender["method"],
        relay_servers=parse_relay_servers(sender["relay_servers"] or ""),
        encryption=encryption,
        tls_verify=bool(sender["tls_verify"]),
        username=sender["username"] if sender["auth_required"] else None,
        password=sender["password"] if sender["auth_required"] else None,
        auth_method=sender["auth_method"],
        max_rcpt_msg=int(sender["max_rcpt_msg"]),
        max_rcpt_session=int(sender["max_rcpt_session"]),
        max_msgs_session=int(sender["max_msgs_session"]),
        rate_msgs=(int(sender["rate_msgs"]), int(sender["rate_msgs_minutes"])),
        rate_rcpts=(int(sender["rate_rcpts"]), int(sender["rate_rcpts_minutes"])),
        dns_servers=_dns_servers(sender["dns_servers"] or ""),
        overrides=overrides,
        mx_threads=max(int(sender["mx_threads"]), 1),
        rp_mode=sender["rp_mode"],
        rp_address=sender["rp_address"],
        null_rp_address=sender["null_rp_address"],
        domain_filter=script,
        ehlo_name=sender["ehlo_name"],
        smaller_first=bool(sender["smaller_first"]),
        reverse_order=bool(sender["reverse_order"]),
        retry_minutes=parse_retry_list(sender["retry_list"]),
        max_retry_hours=float(sender["max_retry_hours"]),
        warn_after_hours=float(sender["warn_after_hours"]),
        up_command=connection["up_command"],
        down_command=connection["down_command"],
        check_command=connection["check_command"],
        fallback_id=connection["fallback_id"],
    )


def schedule_item(row: dict[str, Any]) -> ScheduleItem:
    ids = tuple(int(part) for part in str(row["connection_ids"]).split(",") if part.strip())
    return ScheduleItem(
        name=row["name"],
        enabled=bool(row["enabled"]),
        deny=bool(row["deny"]),
        use_default=bool(row["use_default"]),
        connection_ids=ids,
        once=row["mode"] == "once",
        interval=int(row["interval_min"]),
        start=int(row["start_min"]),
        end=int(row["end_min"]),
        min_queued=int(row["min_queued"]),
        days=int(row["days_mask"]),
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one run needs, read in one transaction."""

    senders: dict[int, SenderConfig]
    broken: dict[int, str]  # connection id -> why its config is unusable
    schedule: tuple[ScheduleItem, ...]
    local_domains: frozenset[str]

    def defaults(self) -> list[int]:
        return [cid for cid, s in self.senders.items() if s.is_default]


def load(conn: Connection) -> Snapshot:
    """Read connections, senders, schedule and local domains (blocking, read-only)."""
    by_connection = {row["connection_id"]: row for row in repo.list_senders(conn)}
    senders: dict[int, SenderConfig] = {}
    broken: dict[int, str] = {}
    for row in repo.list_connections(conn):
        sender = by_connection.get(row["id"])
        if sender is None:
            broken[int(row["id"])] = "no Mail Sender"
            continue
        try:
            senders[int(row["id"])] = sender_config(row, sender)
        except ConfigError as exc:
            broken[int(row["id"])] = str(exc)
    return Snapshot(
        senders=senders,
        broken=broken,
        schedule=tuple(schedule_item(row) for row in repo.list_schedule(conn)),
        local_domains=frozenset(d.name.lower() for d in domains.list_all(conn)),
    )


def return_path(sender: str, config: SenderConfig, local_domains: frozenset[str]) -> str:
    """The MAIL FROM this sender uses for ``sender`` (seed-3 §14)."""
    if not sender:
        return config.null_rp_address  # blank keeps <> (recommended)
    if config.rp_mode == "always" and config.rp_address:
        return config.rp_address
    if config.rp_mode == "if_not_local" and config.rp_address:
        domain = sender.rpartition("@")[2].lower()
        if domain not in local_domains:
            return config.rp_address
    return sender


def immediate_connections(snapshot: Snapshot, chosen: Sequence[int]) -> list[int]:
    """Connections that "send immediately": the chosen ones that are always online,
    or else the first suitable one (seed-3 §17.3)."""
    online = [cid for cid, s in snapshot.senders.items() if s.kind == "lan"]
    picked = [cid for cid in chosen if cid in online]
    if picked:
        return picked
    defaults = [cid for cid in snapshot.defaults() if cid in online]
    return (defaults or online)[:1]
