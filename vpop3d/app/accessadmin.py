"""Editing the IP Access Restrictions tables (seed-4 §3, §15) as the admin sees them.

The tables live in settings read by :mod:`vpop3d.app.access`:
``<service>.access_rules`` (absent = the defaults, Block Routers + Allow Local
Networks), ``access.global_rules`` (absent = blank) and
``<service>.use_global_access``. Rows are kept auto-sorted most specific first
(manual L7659), the order in which they are evaluated.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vpop3d.app.access import rule_from_json, rule_to_json
from vpop3d.core.netrule import (
    AccessRule,
    CIDRError,
    RuleType,
    default_rules,
    parse_cidr,
    parse_ip_range,
    sort_rules,
)

GLOBAL = "global"
USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # as accounts.add_user allows


@dataclass(frozen=True, slots=True)
class Table:
    """One editable table: which columns it has (seed-4 §15 [L7620-7622])."""

    name: str
    title: str
    users_column: bool
    unauth_column: bool
    default_rows: bool  # an absent setting means Block Routers + Allow Local Networks

    @property
    def key(self) -> str:
        return "access.global_rules" if self.name == GLOBAL else f"{self.name}.access_rules"

    @property
    def use_global_key(self) -> str:
        return f"{self.name}.use_global_access"


# The services whose listeners consult their table today (wiring_smtp/pop3/imap).
TABLES = {
    "smtp": Table("smtp", "SMTP", users_column=True, unauth_column=True, default_rows=True),
    "pop3": Table("pop3", "POP3", users_column=True, unauth_column=False, default_rows=True),
    "imap": Table("imap", "IMAP4", users_column=True, unauth_column=False, default_rows=True),
    GLOBAL: Table(GLOBAL, "Global", users_column=False, unauth_column=False, default_rows=False),
}

TYPE_LABELS = {
    RuleType.NETWORK: "IPv4/IPv6 Network/Host",
    RuleType.ROUTERS: "Routers",
    RuleType.LOCAL_NETS: "Local Networks",
    RuleType.GEOIP: "GeoIP Lookup",
    RuleType.ANY_IPV4: "Any IPv4 Host",
    RuleType.ANY_IPV6: "Any IPv6 Host",
    RuleType.ANY: "Any Host",
}


class AccessFormError(ValueError):
    """The row cannot be saved; ``str()`` tells the admin what to type instead."""


def current_rules(table: Table, stored: Any) -> list[AccessRule]:
    """The effective rows of a table from its stored setting, sorted."""
    if stored is None:
        return sort_rules(default_rules()) if table.default_rows else []
    rules: list[AccessRule] = []
    for item in stored if isinstance(stored, list) else []:
        try:
            rules.append(rule_from_json(item))
        except (ValueError, TypeError, AttributeError):
            continue  # access.py skips (and logs) it too
    return sort_rules(rules)


def default_setting() -> list[dict[str, Any]]:
    """The Defaults button: Block Routers, Allow Local Networks (manual L7677)."""
    return to_setting(default_rules())


def to_setting(rules: Iterable[AccessRule]) -> list[dict[str, Any]]:
    return [rule_to_json(r) for r in sort_rules(rules)]


def describe(rule: AccessRule) -> str:
    """``Allow 192.168.1.0/24`` style, for messages and row keys."""
    verb = "Allow" if rule.allow else "Block"
    if rule.network is not None:
        return f"{verb} {rule.network}"
    if rule.tags:
        return f"{verb} GeoIP {','.join(rule.tags)}"
    return f"{verb} {TYPE_LABELS[rule.type]}"


def _networks(address: str) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], str]:
    """Networks for an address, CIDR, ``addr/mask`` or ``first-last`` range, and a note."""
    text = address.strip()
    if not text:
        raise AccessFormError("Enter a network address, e.g. 192.168.1.0/24 or 10.0.0.5.")
    try:
        if "-" in text:
            first, last = parse_ip_range(text)
            nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(
                ipaddress.summarize_address_range(first, last)
            )
            note = f"The range was stored as {len(nets)} network(s)." if len(nets) > 1 else ""
            return nets, note
        network, host_bits = parse_cidr(text)
    except CIDRError as exc:
        raise AccessFormError(
            f"{exc}: use an address (10.0.0.5), a network (192.168.1.0/24 or "
            "192.168.1.0/255.255.255.0) or a range (10.0.0.1-10.0.0.20)."
        ) from None
    note = f"{text} was stored as {network} (host bits cleared)." if host_bits else ""
    return [network], note


def _users(text: str, known: Sequence[str]) -> frozenset[str]:
    names = [n.strip().casefold() for n in text.replace(";", ",").split(",") if n.strip()]
    lowered = {k.casefold() for k in known}
    unknown = [n for n in names if n not in lowered]
    if unknown:
        raise AccessFormError(
            f"No user called {', '.join(unknown)}. Leave Users empty to mean all users."
        )
    return frozenset(names)


def rules_from_form(
    table: Table,
    *,
    allow: bool,
    kind: str,
    address: str,
    allow_unauth: bool,
    users: str,
    known_users: Sequence[str],
) -> tuple[list[AccessRule], str]:
    """The row(s) an Add form describes, and a note for the admin (or "")."""
    try:
        rule_type = RuleType(kind)
    except ValueError:
        raise AccessFormError("Choose a Type from the list.") from None
    unauth = allow_unauth and table.unauth_column and allow
    members = _users(users, known_users) if table.users_column and allow else frozenset()
    if rule_type is RuleType.NETWORK:
        networks, note = _networks(address)
        return [
            AccessRule(allow, rule_type, n, allow_unauth=unauth, users=members) for n in networks
        ], note
    if rule_type is RuleType.GEOIP:
        tags = AccessRule.geoip(allow, address).tags
        if not tags:
            raise AccessFormError("Enter the GeoIP tags, separated by commas, e.g. RU,CN.")
        return [AccessRule(allow, rule_type, tags=tags, allow_unauth=unauth, users=members)], ""
    return [AccessRule(allow, rule_type, allow_unauth=unauth, users=members)], ""


def add_rules(
    existing: Sequence[AccessRule], new: Sequence[AccessRule]
) -> tuple[list[AccessRule], list[str]]:
    """The table with ``new`` rows added; duplicates (same match) are reported."""
    rows = list(existing)
    duplicates: list[str] = []
    for rule in new:
        same = [
            r for r in rows if (r.type, r.network, r.tags) == (rule.type, rule.network, rule.tags)
        ]
        if same:
            duplicates.append(describe(same[0]))
            continue
        rows.append(rule)
    return sort_rules(rows), duplicates


def rules_from_json(
    table: Table, raw: Sequence[Any], known_users: Sequence[str]
) -> list[AccessRule]:
    """Validate a whole table sent as JSON rule objects (the API's PUT); sorted."""
    rules: list[AccessRule] = []
    known = {k.casefold() for k in known_users}
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise AccessFormError(f"rule {number} must be an object")
        try:
            rule = rule_from_json(item)
        except (CIDRError, ValueError, TypeError, AttributeError) as exc:
            raise AccessFormError(f"rule {number}: {exc}") from None
        if rule.users and not table.users_column:
            raise AccessFormError(f"rule {number}: the {table.title} table has no Users column")
        if rule.allow_unauth and not table.unauth_column:
            raise AccessFormError(
                f"rule {number}: the {table.title} table has no Allow Unauth column"
            )
        unknown = sorted(rule.users - known)
        if unknown:
            raise AccessFormError(f"rule {number}: no user called {', '.join(unknown)}")
        rules.append(rule)
    return sort_rules(rules)
