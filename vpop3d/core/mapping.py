"""Recipient resolution through Mappings, the implied user@local-domain rule and ``~@``.

The order is the manual's (seed-1 §17, seed-2 §24, manual L1919-1925):

1. explicit mappings (with ``*``/``?`` wildcards, not ``~@``) that match the
   recipient; if **any** match, only they are used (``fred → kate`` alone means fred
   gets nothing) and all their targets are applied (fan-out);
2. otherwise the implied mapping: the local part at a local domain names a user,
   list or group (switchable: "Disable default user → user mappings");
3. otherwise the ``~@domain`` catch-all mappings;
4. otherwise the address is unrecognised (at a local domain) or remote.

Targets are typed: a local user, list or group, a remote address (outbound queue),
``*REMOTE`` (the address is hosted elsewhere: relay out, or ignore in downloads),
or an inline LAN-forward ``SMTP:addr@[user:pass@]server[:port]`` (seed-1 §14).
Targets that are addresses are resolved again, with loop protection (depth ≤ 10).

Everything here is pure: the caller passes the names, domains and mapping rows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from vpop3d.core.address import AddressError, Mailbox, normalise_domain, parse_mailbox
from vpop3d.core.wildcard import has_wildcards, wildcard_match

__all__ = [
    "MAX_DEPTH",
    "NO_ONE",
    "REMOTE_TARGET",
    "Directory",
    "DiscardTarget",
    "GroupTarget",
    "LanForwardTarget",
    "LanRule",
    "ListTarget",
    "LocalDomains",
    "MappingKind",
    "MappingRow",
    "NameKind",
    "Names",
    "Outcome",
    "RemoteTarget",
    "Resolution",
    "RoutingContext",
    "Source",
    "Step",
    "Target",
    "TargetError",
    "UserTarget",
    "parse_lan_forward",
    "resolve",
    "resolve_from",
]

MAX_DEPTH = 10  # seed-1 §17 proposal: recursive targets, loop protection
REMOTE_TARGET = "*REMOTE"
_DEFAULT_LAN_PORT = 25  # manual L1758


class TargetError(ValueError):
    """A mapping target string cannot be understood."""


class MappingKind(Enum):
    """The mapping's Type column (seed-2 §24)."""

    ALWAYS = "always"
    SMTP = "smtp"
    POP3 = "pop3"
    FROM = "from"


class Source(Enum):
    """How the message arrived: SMTP (incl. local submission) or a POP3 collector."""

    SMTP = "smtp"
    POP3 = "pop3"


class NameKind(Enum):
    USER = "user"
    LIST = "list"
    GROUP = "group"


class Names(Protocol):
    """The shared user/list/group namespace (manual L1708), caseless."""

    def kind_of(self, name: str) -> NameKind | None: ...


@dataclass(frozen=True, slots=True)
class Directory:
    """A :class:`Names` over in-memory sets (names already case-folded or not)."""

    users: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        users: Iterable[str] = (),
        lists: Iterable[str] = (),
        groups: Iterable[str] = (),
    ) -> Directory:
        return cls(
            frozenset(u.casefold() for u in users),
            frozenset(n.casefold() for n in lists),
            frozenset(g.casefold() for g in groups),
        )

    def kind_of(self, name: str) -> NameKind | None:
        key = name.casefold()
        if key in self.users:
            return NameKind.USER
        if key in self.lists:
            return NameKind.LIST
        if key in self.groups:
            return NameKind.GROUP
        return None


@dataclass(frozen=True, slots=True)
class LocalDomains:
    """The Local Domains setting (seed-6 §1.1): domains, wildcards or full addresses.

    ``*@example.com`` is the same as ``example.com``; an entry with a local part
    makes only the matching addresses local.
    """

    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> LocalDomains:
        """Parse the ``;``-separated setting (commas and spaces also separate)."""
        raw = text.replace(",", ";").replace(" ", ";").replace("\t", ";").split(";")
        return cls.of(item for item in raw if item.strip())

    @classmethod
    def of(cls, items: Iterable[str]) -> LocalDomains:
        out: list[str] = []
        for item in items:
            entry = item.strip().casefold()
            if entry.startswith("*@"):
                entry = entry[2:]
            if "@" not in entry and not has_wildcards(entry):
                try:
                    entry = normalise_domain(entry)
                except AddressError:
                    continue
            out.append(entry)
        return cls(tuple(out))

    def contains(self, mailbox: Mailbox) -> bool:
        """True when ``mailbox`` is local by this setting alone."""
        for entry in self.entries:
            if "@" in entry:
                if wildcard_match(entry, f"{mailbox.local}@{mailbox.domain}"):
                    return True
            elif wildcard_match(entry, mailbox.domain):
                return True
        return False

    @property
    def first(self) -> str | None:
        """The first plain domain, used when a bare name must become an address."""
        for entry in self.entries:
            if "@" not in entry and not has_wildcards(entry):
                return entry
        return None


@dataclass(frozen=True, slots=True)
class MappingRow:
    """One row of the Mappings page."""

    pattern: str
    target: str
    kind: MappingKind = MappingKind.ALWAYS
    collector_id: int | None = None  # None: All Mail Collectors
    order: int = 0

    @property
    def is_catch_all(self) -> bool:
        """``~@domain``: consulted only when nothing else matched (manual L1917)."""
        return self.pattern.strip().startswith("~@")


# ------------------------------------------------------------------ targets


@dataclass(frozen=True, slots=True)
class UserTarget:
    name: str


@dataclass(frozen=True, slots=True)
class ListTarget:
    name: str


@dataclass(frozen=True, slots=True)
class GroupTarget:
    name: str


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """Send ``address`` out through the outbound queue.

    ``hosted_elsewhere`` marks a ``*REMOTE`` result: the original address is not
    ours (relay permission applies; POP3 downloads ignore it).
    """

    address: Mailbox
    hosted_elsewhere: bool = False


@dataclass(frozen=True, slots=True)
class LanForwardTarget:
    """Deliver to ``recipient`` directly at ``server:port`` (no MX, own queue)."""

    recipient: Mailbox
    server: str
    port: int = _DEFAULT_LAN_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DiscardTarget:
    """The ``No-one`` target: accept and silently discard (features-a §3a)."""


NO_ONE = "no-one"

Target = UserTarget | ListTarget | GroupTarget | RemoteTarget | LanForwardTarget | DiscardTarget


def parse_lan_forward(text: str) -> LanForwardTarget:
    """Parse ``SMTP:<addr>@[<user>:<pass>@]<server>[:<port>]`` (manual L1744-1766).

    The text after the **last** ``@`` is the server (IPv6 in ``[...]``); before
    that, if there are at least two ``@`` and the last segment has a ``:``, it is
    ``user:pass`` (split on the first ``:``). Passwords containing ``@`` are not
    supported (seed-1 §14 proposal).
    """
    if text[:5].upper() != "SMTP:":
        raise TargetError("LAN forward target must start with SMTP:")
    rest = text[5:].strip()
    at = rest.rfind("@")
    if at <= 0:
        raise TargetError("LAN forward target needs <address>@<server>")
    head, server_part = rest[:at], rest[at + 1 :]
    username: str | None = None
    password: str | None = None
    if head.count("@") >= 2:
        cut = head.rfind("@")
        creds = head[cut + 1 :]
        if ":" in creds:
            username, password = creds.split(":", 1)
            head = head[:cut]
    try:
        recipient = parse_mailbox(head, smtputf8=True)
    except AddressError as exc:
        raise TargetError(f"bad LAN forward address: {exc}") from None
    server, port = _parse_server(server_part)
    return LanForwardTarget(recipient, server, port, username, password)


def _parse_server(text: str) -> tuple[str, int]:
    port_text = ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise TargetError("unterminated [ in server")
        host = text[1:close]
        tail = text[close + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise TargetError("junk after ]")
            port_text = tail[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise TargetError("bad IPv6 server") from None
    else:
        host, sep, port_text = text.partition(":")
        if sep and not port_text:
            raise TargetError("empty port")
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            try:
                host = normalise_domain(host)
            except AddressError:
                raise TargetError(f"bad server {host!r}") from None
    port = _DEFAULT_LAN_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise TargetError(f"bad port {port_text!r}")
        port = int(port_text)
    return host, port


# ------------------------------------------------------------------ resolution


class Outcome(Enum):
    DELIVER = "deliver"  # handled here: see targets
    REMOTE = "remote"  # not ours (or *REMOTE): relay to the recipient itself
    UNRECOGNISED = "unrecognised"  # ours, but nothing matched
    LOOP = "loop"  # mapping chain deeper than MAX_DEPTH


class Step(Enum):
    MAPPING = "mapping"
    IMPLIED = "implied"
    LAN_RULE = "lan-rule"
    CATCH_ALL = "catch-all"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class LanRule:
    """A row of Local Mail → LAN Forwarding → Configuration (seed-6 §1.4).

    Rules are tried in order, the first match wins; ``~@domain`` rules only after
    everything else failed (L10070). ``source``/``collector_id`` are the Cond
    column (None: All). ``rewrite`` ``*@new`` keeps the local part (L10080).
    """

    pattern: str
    server: str
    port: int = _DEFAULT_LAN_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    rewrite: str = ""
    source: Source | None = None
    collector_id: int | None = None

    @property
    def is_catch_all(self) -> bool:
        return self.pattern.strip().startswith("~@")

    def applies(self, ctx: RoutingContext) -> bool:
        if self.source is not None and self.source is not ctx.source:
            return False
        return self.collector_id is None or self.collector_id == ctx.collector_id

    def matches(self, mailbox: Mailbox, ctx: RoutingContext) -> bool:
        pattern = self.pattern.strip()
        if self.is_catch_all:
            return _catch_all_matches(pattern, mailbox)
        if "@" not in pattern and not ctx.lan_bare_local_parts:
            return False
        return _pattern_matches(pattern, mailbox, ctx.local_domains)

    def target_for(self, mailbox: Mailbox) -> LanForwardTarget:
        recipient = mailbox
        rewrite = self.rewrite.strip()
        if rewrite:
            text = mailbox.local + rewrite[1:] if rewrite.startswith("*@") else rewrite
            try:
                recipient = parse_mailbox(text, smtputf8=True)
            except AddressError:
                recipient = mailbox
        return LanForwardTarget(recipient, self.server, self.port, self.username, self.password)


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """Everything resolution reads; built by the app from the store."""

    local_domains: LocalDomains
    names: Names
    mappings: Sequence[MappingRow] = ()
    source: Source = Source.SMTP
    collector_id: int | None = None
    implied: bool = True  # "Disable default user → user mappings" unchecked
    default_domain: str | None = None
    lan_rules: Sequence[LanRule] = ()
    lan_bare_local_parts: bool = False  # "Allow LAN forwarding addresses without a domain"


@dataclass(frozen=True, slots=True)
class Resolution:
    recipient: Mailbox
    outcome: Outcome
    step: Step
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = ()  # dropped targets and why, for logs

    @property
    def is_local(self) -> bool:
        """Handled here (or unknown here): not a relay."""
        return self.outcome in (Outcome.DELIVER, Outcome.UNRECOGNISED)


class _Loop(Exception):
    pass


def _row_applies(row: MappingRow, ctx: RoutingContext) -> bool:
    if row.kind is MappingKind.ALWAYS:
        return True
    if row.kind is MappingKind.SMTP:
        return ctx.source is Source.SMTP
    if row.kind is MappingKind.POP3:
        return ctx.source is Source.POP3 and (
            row.collector_id is None or row.collector_id == ctx.collector_id
        )
    return False


def _pattern_matches(pattern: str, mailbox: Mailbox, domains: LocalDomains) -> bool:
    """Match a mapping address pattern (manual L1871, L1890, L1913)."""
    pat = pattern.strip()
    if "@" not in pat:
        return wildcard_match(pat, mailbox.local) and domains.contains(mailbox)
    local_pat, _, domain_pat = pat.rpartition("@")
    if not has_wildcards(domain_pat):
        try:
            domain_pat = normalise_domain(domain_pat)
        except AddressError:
            return False
    return wildcard_match(local_pat, mailbox.local) and wildcard_match(domain_pat, mailbox.domain)


def _catch_all_matches(pattern: str, mailbox: Mailbox) -> bool:
    domain_pat = pattern.strip()[2:]
    if not has_wildcards(domain_pat):
        try:
            domain_pat = normalise_domain(domain_pat)
        except AddressError:
            return False
    return wildcard_match(domain_pat, mailbox.domain)


def _dedupe(targets: Iterable[Target]) -> tuple[Target, ...]:
    seen: dict[Target, None] = {}
    for target in targets:
        seen.setdefault(target, None)
    return tuple(seen)


class _Resolver:
    def __init__(self, ctx: RoutingContext) -> None:
        self.ctx = ctx
        self.rows = sorted(ctx.mappings, key=lambda r: r.order)
        self.notes: list[str] = []

    def explicit(self, mailbox: Mailbox) -> list[MappingRow]:
        return [
            row
            for row in self.rows
            if not row.is_catch_all
            and _row_applies(row, self.ctx)
            and _pattern_matches(row.pattern, mailbox, self.ctx.local_domains)
        ]

    def catch_all(self, mailbox: Mailbox) -> list[MappingRow]:
        return [
            row
            for row in self.rows
            if row.is_catch_all
            and _row_applies(row, self.ctx)
            and _catch_all_matches(row.pattern, mailbox)
        ]

    def is_local(self, mailbox: Mailbox) -> bool:
        """Local Domains, or an explicit mapping or LAN rule matches (manual L2288)."""
        return (
            self.ctx.local_domains.contains(mailbox)
            or bool(self.explicit(mailbox))
            or bool(self.catch_all(mailbox))
            or self.lan_rule(mailbox, catch_all=False) is not None
            or self.lan_rule(mailbox, catch_all=True) is not None
        )

    def address(
        self, mailbox: Mailbox, depth: int, chain: frozenset[str]
    ) -> tuple[Step, list[Target]] | None:
        rows = self.explicit(mailbox)
        if rows:
            return Step.MAPPING, self.expand(rows, mailbox, depth, chain)
        if self.ctx.implied and self.ctx.local_domains.contains(mailbox):
            kind = self.ctx.names.kind_of(mailbox.local)
            if kind is not None:
                return Step.IMPLIED, [_named(kind, mailbox.local)]
        rule = self.lan_rule(mailbox, catch_all=False)
        if rule is not None:
            return Step.LAN_RULE, [rule.target_for(mailbox)]
        rows = self.catch_all(mailbox)
        if rows:
            return Step.CATCH_ALL, self.expand(rows, mailbox, depth, chain)
        rule = self.lan_rule(mailbox, catch_all=True)
        if rule is not None:
            return Step.LAN_RULE, [rule.target_for(mailbox)]
        return None

    def lan_rule(self, mailbox: Mailbox, *, catch_all: bool) -> LanRule | None:
        """The first LAN forwarding rule for ``mailbox`` (first match wins)."""
        for rule in self.ctx.lan_rules:
            if (
                rule.is_catch_all is catch_all
                and rule.applies(self.ctx)
                and rule.matches(mailbox, self.ctx)
            ):
                return rule
        return None

    def expand(
        self,
        rows: Sequence[MappingRow],
        mailbox: Mailbox,
        depth: int,
        chain: frozenset[str],
    ) -> list[Target]:
        out: list[Target] = []
        for row in rows:
            out.extend(self.target(row.target, mailbox, depth, chain))
        return out

    def target(
        self, text: str, mailbox: Mailbox, depth: int, chain: frozenset[str]
    ) -> list[Target]:
        text = text.strip()
        if text.upper() == REMOTE_TARGET:
            return [RemoteTarget(mailbox, hosted_elsewhere=True)]
        if text[:5].upper() == "SMTP:":
            try:
                return [parse_lan_forward(text)]
            except TargetError as exc:
                self.notes.append(f"target {text!r}: {exc}")
                return []
        if "@" not in text:
            kind = self.ctx.names.kind_of(text)
            if kind is not None:
                return [_named(kind, text)]
            if text.casefold() == NO_ONE:
                return [DiscardTarget()]
            domain = self.ctx.default_domain or self.ctx.local_domains.first
            if not text or domain is None:
                self.notes.append(f"target {text!r}: no such user, list or group")
                return []
            text = f"{text}@{domain}"
        try:
            target = parse_mailbox(text, smtputf8=True)
        except AddressError as exc:
            self.notes.append(f"target {text!r}: {exc}")
            return []
        if target.key in chain:
            self.notes.append(f"target {text!r}: mapping loop, ignored")
            return []
        if depth + 1 > MAX_DEPTH:
            raise _Loop
        found = self.address(target, depth + 1, chain | {target.key})
        if found is not None:
            return found[1]
        if self.is_local(target):
            self.notes.append(f"target {text!r}: not recognised")
            return []
        return [RemoteTarget(target)]


def _named(kind: NameKind, name: str) -> Target:
    key = name.casefold()
    if kind is NameKind.USER:
        return UserTarget(key)
    if kind is NameKind.LIST:
        return ListTarget(key)
    return GroupTarget(key)


def resolve(recipient: Mailbox, ctx: RoutingContext) -> Resolution:
    """Resolve one envelope recipient (seed-1 §17 order of evaluation)."""
    resolver = _Resolver(ctx)
    try:
        found = resolver.address(recipient, 0, frozenset({recipient.key}))
    except _Loop:
        return Resolution(recipient, Outcome.LOOP, Step.MAPPING)
    notes = tuple(resolver.notes)
    if found is None:
        outcome = Outcome.UNRECOGNISED if ctx.local_domains.contains(recipient) else Outcome.REMOTE
        return Resolution(recipient, outcome, Step.NONE, (), notes)
    step, raw = found
    targets = _dedupe(raw)
    if not targets:
        return Resolution(recipient, Outcome.UNRECOGNISED, step, (), notes)
    if all(isinstance(t, RemoteTarget) and t.hosted_elsewhere for t in targets):
        # *REMOTE overrides locality (manual L725, L1901).
        return Resolution(recipient, Outcome.REMOTE, step, targets, notes)
    return Resolution(recipient, Outcome.DELIVER, step, targets, notes)


def resolve_from(sender: Mailbox, ctx: RoutingContext) -> tuple[Target, ...]:
    """Targets of FROM-mappings for a downloaded message's sender (manual L1903-1907).

    Only POP3-collected mail uses them; for other sources this returns ``()``.
    """
    if ctx.source is not Source.POP3:
        return ()
    resolver = _Resolver(ctx)
    out: list[Target] = []
    for row in resolver.rows:
        if row.kind is not MappingKind.FROM:
            continue
        if row.collector_id is not None and row.collector_id != ctx.collector_id:
            continue
        pattern = row.pattern.strip()
        matched = (
            wildcard_match(pattern, sender.local)
            if "@" not in pattern
            else _pattern_matches(pattern, sender, ctx.local_domains)
        )
        if matched:
            try:
                out.extend(resolver.target(row.target, sender, 0, frozenset()))
            except _Loop:
                continue
    return _dedupe(out)
