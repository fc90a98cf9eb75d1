"""Recipient routing over the store: load names, domains and mappings; ask core.mapping.

A :class:`RoutingSnapshot` is everything resolution reads, loaded in one read
transaction and cached for a short time (mappings and users change rarely, RCPTs
come in bursts). :class:`Router` is the entry point SMTP delivery, collectors, lists
and webmail share.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from vpop3d.core.address import AddressError, Mailbox, parse_mailbox
from vpop3d.core.mapping import (
    Directory,
    LanRule,
    LocalDomains,
    MappingKind,
    MappingRow,
    Resolution,
    RoutingContext,
    Source,
    parse_lan_forward,
    resolve,
    resolve_from,
)
from vpop3d.core.mapping import Target as RouteTarget
from vpop3d.core.policy import GroupSettings, UserSettings, effective_settings
from vpop3d.store import domains as domains_repo
from vpop3d.store import groups as groups_repo
from vpop3d.store import mappings as mappings_repo
from vpop3d.store import users as users_repo
from vpop3d.store.db import Database
from vpop3d.store.rows import Group, Mapping

__all__ = [
    "ListNames",
    "LocalUser",
    "Router",
    "RoutingSnapshot",
    "SettingsReader",
    "lan_rules_from_json",
    "load_snapshot",
]

# Settings keys (Settings → Local Mail, seed-6 §1.1 and §1.4).
DISABLE_IMPLIED = "localmail.disable_implied_mappings"
LAN_RULES = "lanforward.rules"
LAN_BARE = "lanforward.allow_bare_addresses"


class SettingsReader(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...


def _condition(value: Any) -> tuple[Source | None, int | None]:
    """The Cond column: All, SMTP, POP3 or a collector id (seed-6 §1.4)."""
    text = str(value or "all").strip().lower()
    if text in ("", "all"):
        return None, None
    if text == "smtp":
        return Source.SMTP, None
    if text == "pop3":
        return Source.POP3, None
    text = text.removeprefix("collector:")
    if text.isdigit():
        return Source.POP3, int(text)
    raise ValueError(f"unknown LAN rule condition {value!r}")


def lan_rules_from_json(raw: Any) -> tuple[tuple[LanRule, ...], list[str]]:
    """Parse the stored LAN forwarding rules; returns (rules, problems).

    A rule object: ``{"address": "*@x.test", "server": "10.0.0.1:587", "user": "",
    "password": "", "rewrite": "", "cond": "all"}``.
    """
    rules: list[LanRule] = []
    problems: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            server = str(item.get("server", "")).strip()
            target = parse_lan_forward(f"SMTP:x@invalid@{server}")
            source, collector = _condition(item.get("cond"))
            rules.append(
                LanRule(
                    pattern=str(item["address"]).strip(),
                    server=target.server,
                    port=target.port,
                    username=str(item.get("user") or "") or None,
                    password=str(item.get("password") or "") or None,
                    rewrite=str(item.get("rewrite") or ""),
                    source=source,
                    collector_id=collector,
                )
            )
        except (KeyError, ValueError) as exc:
            problems.append(f"LAN rule {item!r}: {exc}")
    return tuple(rules), problems


@dataclass(frozen=True, slots=True)
class LocalUser:
    """What delivery needs about one local user."""

    id: int
    name: str
    settings: UserSettings  # after the primary group's overrides


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    domains: LocalDomains
    default_domain: str | None
    directory: Directory
    mappings: tuple[MappingRow, ...]
    users: dict[str, LocalUser] = field(default_factory=dict)
    group_members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    internet_blocked: frozenset[str] = field(default=frozenset(), init=False)

    def user(self, name: str) -> LocalUser | None:
        return self.users.get(name.casefold())

    def no_internet_receivers(self) -> frozenset[str]:
        """Users whose effective "Allow Receiving Internet Mail" is off (L1718)."""
        return self.internet_blocked

    def __post_init__(self) -> None:
        blocked = frozenset(
            name for name, u in self.users.items() if not u.settings.allow_receive_internet
        )
        object.__setattr__(self, "internet_blocked", blocked)


def _group_settings(row: Group) -> GroupSettings:
    return GroupSettings(
        name=row.name,
        enabled=row.enabled,
        allow_send_internet=row.allow_send_internet,
        allow_receive_internet=row.allow_receive_internet,
        max_outgoing_kb=row.max_outgoing_kb,
        reply_address=row.reply_address,
    )


def _mapping_kind(mapping: Mapping) -> MappingKind:
    """The Type column: ``direction`` "from" is FROM; an optional ``kind`` attribute
    ("always"/"smtp"/"pop3", when the store grows one) narrows "to" mappings."""
    if mapping.direction == "from":
        return MappingKind.FROM
    kind = str(getattr(mapping, "kind", "always") or "always").lower()
    if kind in ("normal", "always"):
        return MappingKind.ALWAYS
    try:
        found = MappingKind(kind)
    except ValueError:
        return MappingKind.ALWAYS
    return MappingKind.ALWAYS if found is MappingKind.FROM else found


ListNames = Callable[[Connection], Iterable[str]]


def load_snapshot(conn: Connection, list_names: ListNames | None = None) -> RoutingSnapshot:
    """Read everything routing needs, in the caller's transaction (blocking).

    ``list_names`` is the lists feature's repo function for list names (the shared
    user/list/group namespace, manual L1708); without it no name is a list.
    """
    domain_rows = domains_repo.list_all(conn)
    default = domains_repo.default(conn)
    group_rows = groups_repo.list_all(conn)
    groups_by_id = {g.id: g for g in group_rows}
    users: dict[str, LocalUser] = {}
    members: dict[str, list[str]] = {g.name: [] for g in group_rows}
    secondary_by_user: dict[int, list[int]] = defaultdict(list)
    for user_id, group_id in users_repo.all_secondary_groups(conn) if group_rows else ():
        secondary_by_user[user_id].append(group_id)
    for row in users_repo.list_all(conn):
        own = UserSettings(
            enabled=row.enabled,
            allow_send_internet=row.allow_send_internet,
            allow_receive_internet=row.allow_receive_internet,
        )
        group = groups_by_id.get(row.primary_group_id or -1)
        merged = effective_settings(own, _group_settings(group) if group else None)
        users[row.name.casefold()] = LocalUser(row.id, row.name, merged)
        if group is not None:
            members[group.name].append(row.name)
        for gid in secondary_by_user.get(row.id, ()):
            secondary = groups_by_id.get(gid)
            if secondary is not None and row.name not in members[secondary.name]:
                members[secondary.name].append(row.name)
    rows: list[MappingRow] = []
    for mapping in mappings_repo.list_all(conn):
        if not mapping.enabled:
            continue
        kind = _mapping_kind(mapping)
        collector = getattr(mapping, "collector_id", None)
        rows.extend(
            MappingRow(
                mapping.pattern,
                target,
                kind,
                collector_id=collector if isinstance(collector, int) else None,
                order=mapping.position,
            )
            for target in mapping.targets
        )
    return RoutingSnapshot(
        domains=LocalDomains.of(d.name for d in domain_rows),
        default_domain=default.name if default else None,
        directory=Directory.of(
            users=users,
            lists=list_names(conn) if list_names is not None else (),
            groups=(g.name for g in group_rows),
        ),
        mappings=tuple(rows),
        users=users,
        group_members={name: tuple(names) for name, names in members.items()},
    )


class Router:
    """Cached routing data plus resolution; ``invalidate()`` after admin edits."""

    _log = Logger()

    def __init__(
        self,
        database: Database,
        clock: IReactorTime,
        *,
        setting: Callable[[str, bool], bool] = lambda _key, default: default,
        settings: SettingsReader | None = None,
        list_names: ListNames | None = None,
        ttl: float = 2.0,
    ) -> None:
        self._db = database
        self._list_names = list_names
        self._clock = clock
        self._setting = setting
        self._settings = settings
        self._ttl = ttl
        self._cached: RoutingSnapshot | None = None
        self._stamp = 0.0
        self._waiters: list[Deferred[RoutingSnapshot]] | None = None  # a load in flight

    def invalidate(self) -> None:
        """Admin changes: the next caller waits for fresh data."""
        self._cached = None

    async def snapshot(self) -> RoutingSnapshot:
        """The routing data, at most ``ttl`` seconds old, loaded once however many
        sessions ask at the same time (they all wait for the one load)."""
        now = self._clock.seconds()
        if self._cached is not None and now - self._stamp <= self._ttl:
            return self._cached
        waiter: Deferred[RoutingSnapshot] = Deferred()
        if self._waiters is None:
            self._waiters = [waiter]  # registered first: the load may finish at once
            self._start_load(now)
        else:
            self._waiters.append(waiter)
        return await waiter

    def _start_load(self, now: float) -> None:

        def loaded(snapshot: RoutingSnapshot) -> None:
            waiters, self._waiters = self._waiters or [], None
            self._cached, self._stamp = snapshot, now
            for waiter in waiters:
                waiter.callback(snapshot)

        def failed(failure: Failure) -> None:
            waiters, self._waiters = self._waiters or [], None
            for waiter in waiters:
                waiter.errback(failure)
            if not waiters:
                self._log.failure("routing data refresh failed", failure)

        self._db.read(load_snapshot, self._list_names).addCallbacks(loaded, failed)

    def context(
        self,
        snapshot: RoutingSnapshot,
        source: Source = Source.SMTP,
        collector_id: int | None = None,
        *,
        local_domains: LocalDomains | None = None,
        implied: bool | None = None,
    ) -> RoutingContext:
        """The resolution context; collectors pass their Accepted Domains and their
        own implied-mapping switch (seed-2 §24: the domain set depends on the source)."""
        lan_rules: tuple[LanRule, ...] = ()
        bare = False
        if self._settings is not None:
            lan_rules, problems = lan_rules_from_json(self._settings.get(LAN_RULES, []))
            for problem in problems:
                self._log.warn("ignoring {problem}", problem=problem)
            bare = bool(self._settings.get(LAN_BARE, False))
        if implied is None:
            implied = not self._setting(DISABLE_IMPLIED, False)
            if self._settings is not None:
                implied = implied and not bool(self._settings.get(DISABLE_IMPLIED, False))
        return RoutingContext(
            local_domains=snapshot.domains if local_domains is None else local_domains,
            names=snapshot.directory,
            mappings=snapshot.mappings,
            source=source,
            collector_id=collector_id,
            implied=implied,
            default_domain=snapshot.default_domain,
            lan_rules=lan_rules,
            lan_bare_local_parts=bare,
        )

    async def resolve(
        self,
        recipient: Mailbox,
        source: Source = Source.SMTP,
        collector_id: int | None = None,
        *,
        local_domains: LocalDomains | None = None,
        implied: bool | None = None,
    ) -> Resolution:
        snapshot = await self.snapshot()
        context = self.context(
            snapshot, source, collector_id, local_domains=local_domains, implied=implied
        )
        return resolve(recipient, context)

    async def resolve_from(
        self, sender: Mailbox, collector_id: int | None = None
    ) -> tuple[RouteTarget, ...]:
        """FROM-mappings for a downloaded message (collectors)."""
        snapshot = await self.snapshot()
        return resolve_from(sender, self.context(snapshot, Source.POP3, collector_id))

    async def is_local_address(self, address: str) -> bool:
        """Local Domains or a matching mapping (manual L2288); bad syntax is not local."""
        try:
            mailbox = parse_mailbox(address, smtputf8=True)
        except AddressError:
            return False
        resolution = await self.resolve(mailbox)
        return resolution.is_local
