"""Mail Collector settings as typed configuration, and what one run reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpop3d.app.collectorroute import RoutingOptions
from vpop3d.proto.pop3.client import TLSMode

__all__ = ["CollectorConfig", "RunResult", "config_from_row"]


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """One collector row as typed configuration."""

    id: int
    name: str
    kind: str = "pop3"
    enabled: bool = True
    priority: int = 0
    connection_ids: tuple[int, ...] = ()
    server: str = ""
    port: int = 110
    tls_mode: TLSMode = TLSMode.NONE
    tls_verify: bool = True
    auth_method: str = "plain"
    username: str = ""
    password: str = field(default="", repr=False)
    leave_days: int = 0
    max_messages: int = 0
    max_size_kb: int = 0
    remove_duplicates: bool = False
    use_rules: bool = False
    delete_when_deleted_locally: bool = False
    routing: str = "headers"
    accepted_domains: str = ""
    target_user: str = ""
    target_address: str = ""
    target_server: str = ""
    options: RoutingOptions = field(default_factory=RoutingOptions)
    error_action: str = "admin"
    error_address: str = ""
    error_also_bounce: bool = False  # seed-3 §6: also bounce to the sender
    error_bounce_spam_score: int | None = None  # no bounces at spam score >= N; None = off
    etrn_server: str = ""
    etrn_argument: str = ""
    wait_seconds: int = 0  # Incoming SMTP Mail Feed: stay up to N s after ETRN (seed-3 §8)
    odmr_domains: str = ""


def config_from_row(row: dict[str, Any]) -> CollectorConfig:
    ids = tuple(int(p) for p in str(row.get("connection_ids") or "").split(",") if p.strip())
    return CollectorConfig(
        id=int(row["id"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        enabled=bool(row["enabled"]),
        priority=int(row["priority"]),
        connection_ids=ids,
        server=str(row["server"]),
        port=int(row["port"]),
        tls_mode=TLSMode(row["tls_mode"]),
        tls_verify=bool(row["tls_verify"]),
        auth_method=str(row["auth_method"]).lower(),
        username=str(row["username"]),
        password=str(row["password"]),
        leave_days=int(row["leave_days"]),
        max_messages=int(row["max_messages"]),
        max_size_kb=int(row["max_size_kb"]),
        remove_duplicates=bool(row["remove_duplicates"]),
        use_rules=bool(row["use_rules"]),
        delete_when_deleted_locally=bool(row["delete_when_deleted_locally"]),
        routing=str(row["routing"]),
        accepted_domains=str(row["accepted_domains"]),
        target_user=str(row["target_user"]),
        target_address=str(row["target_address"]),
        target_server=str(row["target_server"]),
        options=RoutingOptions.from_json(str(row["routing_options"])),
        error_action=str(row["error_action"]),
        error_address=str(row["error_address"]),
        error_also_bounce=bool(row.get("error_also_bounce") or False),
        error_bounce_spam_score=_optional_int(row.get("error_bounce_spam_score")),
        etrn_server=str(row["etrn_server"]),
        etrn_argument=str(row["etrn_argument"]),
        wait_seconds=max(int(row.get("wait_seconds") or 0), 0),
        odmr_domains=str(row["odmr_domains"]),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(slots=True)
class RunResult:
    """What one run did; ``text`` is the Last connection result."""

    ok: bool = True
    text: str = ""
    listed: int = 0
    downloaded: int = 0
    deleted: int = 0
    skipped: int = 0
    routing_errors: int = 0
