"""Frozen rows the repositories return; no SQLAlchemy object crosses the thread hop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    enabled: bool
    force: bool
    in_everyone: bool | None
    allow_send_internet: bool | None
    allow_receive_internet: bool | None
    monitor: bool | None
    admin: bool | None
    max_outgoing_kb: int
    reply_address: str


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    real_name: str
    enabled: bool
    is_admin: bool
    password_hash: str
    scram_sha256: str | None
    plain_secret: str | None
    webmail_password_hash: str | None
    must_change_password: bool
    quota_kb: int
    allow_send_internet: bool
    allow_receive_internet: bool
    primary_group_id: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Mapping:
    id: int
    position: int
    pattern: str
    targets: tuple[str, ...]
    direction: str  # "to" | "from"
    enabled: bool
    kind: str = "always"  # "always" | "smtp" | "pop3": which mail the mapping applies to
    collector_id: int | None = None


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    user_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    recent_uid: int
    special_use: str | None


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    folder_id: int
    uid: int
    modseq: int
    flags: int
    keywords: tuple[str, ...]
    internal_date: int
    size: int
    uidl: str
    blob_id: int
    envelope_from: str
    envelope_to: tuple[str, ...]
    summary: str | None
    held: bool


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: float
    level: str
    source: str
    text: str
