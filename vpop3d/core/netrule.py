"""IP access restrictions (seed-4 §3, §15; reference formats §4 CIDR, §17 wildcards).

A table of :class:`AccessRule` rows is sorted most specific first and evaluated top
to bottom; the first matching row decides allow/block and carries its "Allow
Unauth" flag and Users list. No match means deny (seed-4 §21 item 10). A service
table and the global table combine "most restrictive wins" (seed-4 §3).

Routers and Local Networks are facts detected at startup and passed in as
:class:`NetworkFacts`; GeoIP tags come from an injected lookup, so this stays pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from vpop3d.core.wildcard import wildcard_match

__all__ = [
    "AccessRule",
    "CIDRError",
    "NetworkFacts",
    "RuleType",
    "Verdict",
    "combine",
    "default_rules",
    "evaluate",
    "ip_in_patterns",
    "normalise_ip",
    "parse_cidr",
    "parse_ip_range",
    "sort_rules",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
GeoIPLookup = Callable[[IPAddress], Iterable[str]]


class CIDRError(ValueError):
    """An address, CIDR or mask cannot be parsed."""


def normalise_ip(text: str | IPAddress) -> IPAddress:
    """Parse a client IP, unwrapping IPv4-mapped IPv6 (``::ffff:a.b.c.d``).

    A dual-stack ``[Any]`` socket reports IPv4 peers in mapped form; without the
    unwrap no IPv4 rule would ever match them (reference formats §4).
    """
    try:
        ip = ipaddress.ip_address(text) if isinstance(text, str) else text
    except ValueError:
        raise CIDRError(f"bad IP address {text!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _mask_to_prefix(mask: str) -> int:
    try:
        value = int(ipaddress.IPv4Address(mask))
    except ValueError:
        raise CIDRError(f"bad subnet mask {mask!r}") from None
    prefix = bin(value).count("1")
    # A valid mask is contiguous ones from the left (reference formats §4).
    if value != ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF):
        raise CIDRError(f"non-contiguous subnet mask {mask!r}")
    return prefix


def parse_cidr(text: str) -> tuple[IPNetwork, bool]:
    """Parse ``addr``, ``addr/len`` or ``addr/255.255.255.0``.

    Returns the network (host bits cleared, as the manual stores it, L7710) and a
    flag telling whether the input had host bits set, so the UI can say so.
    """
    text = text.strip()
    addr_text, sep, prefix_text = text.partition("/")
    try:
        addr = normalise_ip(addr_text.strip())
    except CIDRError:
        raise
    max_len = 32 if addr.version == 4 else 128
    if not sep:
        prefix = max_len
    elif "." in prefix_text and addr.version == 4:
        prefix = _mask_to_prefix(prefix_text.strip())
    else:
        prefix_text = prefix_text.strip()
        if not prefix_text.isdigit() or int(prefix_text) > max_len:
            raise CIDRError(f"bad prefix length {prefix_text!r}")
        prefix = int(prefix_text)
    network = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    return network, network.network_address != addr


def parse_ip_range(text: str) -> tuple[IPAddress, IPAddress]:
    """Parse ``first-last`` (inclusive, one family), as in GeoIP rows (manual L7756)."""
    first_text, sep, last_text = text.partition("-")
    if not sep:
        raise CIDRError(f"not a range: {text!r}")
    first = normalise_ip(first_text.strip())
    last = normalise_ip(last_text.strip())
    if first.version != last.version or int(first) > int(last):
        raise CIDRError(f"bad range {text!r}")
    return first, last


def ip_in_patterns(ip: str | IPAddress, patterns: Iterable[str]) -> bool:
    """Match an IP against textual patterns (``192.168.1.*``), ranges or CIDRs.

    Used by lists such as Load Limiting's "Reserve Sessions for" (manual L6606):
    wildcard patterns match the dotted-decimal text, ``a-b`` is an inclusive range,
    others are parsed as CIDR. Unparseable entries never match.
    """
    addr = normalise_ip(ip)
    text = str(addr)
    for raw in patterns:
        pattern = raw.strip()
        if not pattern:
            continue
        if "*" in pattern or "?" in pattern:
            if wildcard_match(pattern, text):
                return True
            continue
        if "-" in pattern:
            try:
                first, last = parse_ip_range(pattern)
            except CIDRError:
                continue
            if first.version == addr.version and int(first) <= int(addr) <= int(last):
                return True
            continue
        try:
            network, _ = parse_cidr(pattern)
        except CIDRError:
            continue
        if network.version == addr.version and addr in network:
            return True
    return False


class RuleType(Enum):
    """The Type column (seed-4 §15)."""

    NETWORK = "network"  # IPv4/IPv6 Network/Host
    ROUTERS = "routers"
    LOCAL_NETS = "local-nets"
    GEOIP = "geoip"
    ANY_IPV4 = "any-ipv4"
    ANY_IPV6 = "any-ipv6"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One row: Allow/Block, Type, Address/Prefix, Allow Unauth, Users."""

    allow: bool
    type: RuleType
    network: IPNetwork | None = None  # NETWORK only
    tags: tuple[str, ...] = ()  # GEOIP only
    allow_unauth: bool = False
    users: frozenset[str] = frozenset()  # empty: all users (manual L7712)

    @classmethod
    def net(
        cls,
        allow: bool,
        cidr: str,
        *,
        allow_unauth: bool = False,
        users: Iterable[str] = (),
    ) -> AccessRule:
        network, _ = parse_cidr(cidr)
        return cls(
            allow,
            RuleType.NETWORK,
            network,
            allow_unauth=allow_unauth,
            users=frozenset(u.casefold() for u in users),
        )

    @classmethod
    def geoip(cls, allow: bool, tags: str) -> AccessRule:
        """Tags separated by commas or semicolons, e.g. ``RU,CN`` (manual L7752)."""
        parts = tags.replace(";", ",").split(",")
        return cls(allow, RuleType.GEOIP, tags=tuple(p.strip().upper() for p in parts if p))

    def permits_user(self, username: str | None) -> bool:
        """True when ``username`` may authenticate through this row."""
        if not self.users:
            return True
        return username is not None and username.casefold() in self.users


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """Routers (default gateways) and directly attached networks, detected at start."""

    routers: tuple[IPAddress, ...] = ()
    local_nets: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, routers: Iterable[str], local_nets: Iterable[str]) -> NetworkFacts:
        return cls(
            tuple(normalise_ip(r) for r in routers),
            tuple(parse_cidr(n)[0] for n in local_nets),
        )


def default_rules() -> tuple[AccessRule, ...]:
    """The Defaults button: Block Routers, Allow Local Networks (manual L7677)."""
    return (
        AccessRule(allow=False, type=RuleType.ROUTERS),
        AccessRule(allow=True, type=RuleType.LOCAL_NETS),
    )


_RANK = {
    RuleType.NETWORK: 0,
    RuleType.ROUTERS: 1,
    RuleType.LOCAL_NETS: 2,
    RuleType.GEOIP: 3,
    RuleType.ANY_IPV4: 4,
    RuleType.ANY_IPV6: 4,
    RuleType.ANY: 5,
}


def _sort_key(rule: AccessRule) -> tuple[int, int]:
    # seed-4 §15: hosts → Routers → networks by prefix → Local Nets → GeoIP → Any.
    if rule.type is RuleType.NETWORK and rule.network is not None:
        host = rule.network.prefixlen == rule.network.max_prefixlen
        return (0 if host else 2, -rule.network.prefixlen)
    if rule.type is RuleType.ROUTERS:
        return (1, 0)
    return (_RANK[rule.type] + 1, 0)


def sort_rules(rules: Iterable[AccessRule]) -> list[AccessRule]:
    """Auto-sort most specific first (manual L7659); stable for equal keys."""
    return sorted(rules, key=_sort_key)


def _matches(
    rule: AccessRule,
    ip: IPAddress,
    facts: NetworkFacts,
    geoip: GeoIPLookup | None,
) -> bool:
    kind = rule.type
    if kind is RuleType.ANY:
        return True
    if kind is RuleType.ANY_IPV4:
        return ip.version == 4
    if kind is RuleType.ANY_IPV6:
        return ip.version == 6
    if kind is RuleType.NETWORK:
        net = rule.network
        return net is not None and net.version == ip.version and ip in net
    if kind is RuleType.ROUTERS:
        return ip in facts.routers
    if kind is RuleType.LOCAL_NETS:
        return any(n.version == ip.version and ip in n for n in facts.local_nets)
    if geoip is None:
        return False
    found = {tag.strip().upper() for tag in geoip(ip)}
    return any(tag in found for tag in rule.tags)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one table for one IP: the deciding row, or none."""

    rule: AccessRule | None

    @property
    def allowed(self) -> bool:
        return self.rule is not None and self.rule.allow

    @property
    def allow_unauth(self) -> bool:
        return self.allowed and self.rule is not None and self.rule.allow_unauth

    def permits_user(self, username: str | None) -> bool:
        return self.rule is not None and self.allowed and self.rule.permits_user(username)


def evaluate(
    rules: Sequence[AccessRule],
    ip: str | IPAddress,
    facts: NetworkFacts = NetworkFacts(),
    geoip: GeoIPLookup | None = None,
) -> Verdict:
    """First match after auto-sort decides; no match denies."""
    addr = normalise_ip(ip)
    for rule in sort_rules(rules):
        if _matches(rule, addr, facts, geoip):
            return Verdict(rule)
    return Verdict(None)


def combine(
    service: Sequence[AccessRule],
    global_rules: Sequence[AccessRule],
    ip: str | IPAddress,
    *,
    use_global: bool = False,
    facts: NetworkFacts = NetworkFacts(),
    geoip: GeoIPLookup | None = None,
) -> Verdict:
    """Service table plus global table (seed-4 §3).

    The global list applies when the service list is blank or ``use_global`` is
    set; then the connection must pass both, and a block in either wins.
    """
    if not service:
        if not global_rules:
            return Verdict(None)
        return evaluate(global_rules, ip, facts, geoip)
    own = evaluate(service, ip, facts, geoip)
    if not use_global or not global_rules:
        return own
    other = evaluate(global_rules, ip, facts, geoip)
    if not other.allowed:
        return other
    return own
