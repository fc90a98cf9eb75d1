"""Where mail for a domain goes: MX lookup over twisted.names, and DNS Overrides.

RFC 5321 §5.1: MX records in preference order (ties shuffled), or the domain's own
A/AAAA records when it has no MX ("implicit MX"). RFC 7505: a single ``MX 0 .``
means the domain accepts no mail, a permanent failure. The resolver asks the
configured DNS servers (seed-3 §12 "DNS Servers to use"), else the system's.

DNS Overrides (seed-3 §13) are one per line::

    <domain-pattern> [user:pass@]host[:port] [$retries>=3] [$size>1000000] [$adddns] [$end]

``*.example.com`` does not match ``example.com``. The first matching line wins;
``$adddns`` keeps the real MX hosts after the override host.
"""

from __future__ import annotations

import ipaddress
import operator
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.names import client, dns, error

from vpop3d.core.wildcard import wildcard_match

RESOLV_CONF = "/etc/resolv.conf"  # the system resolver configuration (resolv.conf(5))


class DNSFailure(Exception):
    """No usable answer; ``permanent`` for NXDOMAIN and null MX, else try later."""

    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class MXHost:
    """One host to try, with the addresses it resolved to."""

    name: str
    preference: int
    addresses: tuple[str, ...]
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)


# ------------------------------------------------------------------ overrides

_CONDITION = re.compile(r"^\$(retries|size)\s*(==|=|!=|<>|<=|>=|<|>)\s*(\d+)$", re.IGNORECASE)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class OverrideError(ValueError):
    """A DNS Overrides line that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True)
class Override:
    pattern: str
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    conditions: tuple[tuple[str, str, int], ...] = ()
    add_dns: bool = False
    dnsmx: tuple[tuple[bool, str], ...] = ()  # ($dnsmx:!pattern -> (True, pattern))

    def matches(self, domain: str, *, retries: int, size: int) -> bool:
        if not wildcard_match(self.pattern.lower(), domain.lower()):
            return False
        facts = {"retries": retries, "size": size}
        return all(_OPS[op](facts[name], value) for name, op, value in self.conditions)


def parse_server(text: str) -> tuple[str, int, str | None, str | None]:
    """``[user:pass@]host[:port]`` (default port 25)."""
    username = password = None
    if "@" in text:
        creds, _, text = text.rpartition("@")
        username, sep, password = creds.partition(":")
        if not sep or not username:
            raise OverrideError(f"bad credentials in {text!r}")
    host, port = text, 25
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text)
    if not host:
        raise OverrideError("missing server")
    return host, port, username, password


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise OverrideError(f"bad port {text!r}")
    return int(text)


def parse_overrides(text: str) -> list[Override]:
    """Parse the DNS Overrides box; raises :class:`OverrideError` naming the line."""
    found: list[Override] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if len(words) < 2:
            raise OverrideError(f"line {number}: need <domain> <server>")
        try:
            host, port, username, password = parse_server(words[1])
        except OverrideError as exc:
            raise OverrideError(f"line {number}: {exc}") from None
        conditions: list[tuple[str, str, int]] = []
        dnsmx: list[tuple[bool, str]] = []
        add_dns = False
        for word in words[2:]:
            lowered = word.lower()
            if lowered == "$end":
                continue  # one server per line here: $end is implied
            if lowered == "$adddns":
                add_dns = True
                continue
            if lowered.startswith("$dnsmx:"):
                pattern = lowered[len("$dnsmx:") :]
                negate = pattern.startswith("!")
                pattern = pattern.lstrip("!")
                if not pattern:
                    raise OverrideError(f"line {number}: $dnsmx needs a host pattern")
                dnsmx.append((negate, pattern))
                continue
            match = _CONDITION.match(word)
            if match is None:
                raise OverrideError(f"line {number}: unknown condition {word!r}")
            conditions.append((match.group(1).lower(), match.group(2), int(match.group(3))))
        found.append(
            Override(
                words[0], host, port, username, password, tuple(conditions), add_dns, tuple(dnsmx)
            )
        )
    return found


def find_override(
    overrides: Sequence[Override], domain: str, *, retries: int = 0, size: int = 0
) -> Override | None:
    for item in overrides:
        if item.matches(domain, retries=retries, size=size):
            return item
    return None


# ------------------------------------------------------------------ resolver


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class MXResolver:
    """MX and address lookups for outbound delivery."""

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        servers: Sequence[tuple[str, int]] = (),
        *,
        timeout: Sequence[int] = (1, 3, 11),
        resolver: Any = None,
    ) -> None:
        if resolver is not None:
            self._resolver = resolver
        elif servers:
            self._resolver = client.Resolver(
                servers=list(servers), reactor=reactor, timeout=tuple(timeout)
            )
        else:
            self._resolver = client.Resolver(
                resolv=RESOLV_CONF, reactor=reactor, timeout=tuple(timeout)
            )

    async def _query(self, method: Callable[..., Deferred[Any]], name: str) -> list[Any]:
        try:
            answers, _authority, _additional = await method(name)
        except (error.DNSNameError, error.AuthoritativeDomainError):
            raise DNSFailure(f"{name}: no such domain", permanent=True) from None
        except Exception as exc:  # noqa: BLE001  timeouts, SERVFAIL: try again later
            raise DNSFailure(f"{name}: DNS lookup failed ({exc})", permanent=False) from None
        return list(answers)

    async def addresses(self, name: str) -> tuple[str, ...]:
        """A then AAAA records of ``name`` (IPv4 first)."""
        if _is_ip(name):
            return (name,)
        found: list[str] = []
        for method, rtype in (
            (self._resolver.lookupAddress, dns.A),
            (self._resolver.lookupIPV6Address, dns.AAAA),
        ):
            try:
                answers = await self._query(method, name)
            except DNSFailure as exc:
                if exc.permanent:
                    raise
                continue
            found.extend(
                rr.payload.dottedQuad()
                if rtype == dns.A
                else ipaddress.IPv6Address(rr.payload.address).compressed
                for rr in answers
                if rr.type == rtype
            )
        return tuple(dict.fromkeys(found))

    async def mx_names(self, domain: str) -> list[tuple[int, str]]:
        """(preference, host) sorted, ties shuffled (RFC 5321 §5.1)."""
        answers = await self._query(self._resolver.lookupMailExchange, domain)
        records = [
            (int(rr.payload.preference), str(rr.payload.name).rstrip(".").lower())
            for rr in answers
            if rr.type == dns.MX
        ]
        random.shuffle(records)
        records.sort(key=lambda item: item[0])
        return records

    async def mx_hosts(self, domain: str) -> list[MXHost]:
        """The hosts to try for ``domain``; raises :class:`DNSFailure`."""
        records = await self.mx_names(domain)
        if len(records) == 1 and records[0][1] in ("", "."):
            # RFC 7505 §3: null MX: this domain accepts no mail.
            raise DNSFailure(f"{domain} does not accept mail (null MX)", permanent=True)
        if not records:
            # RFC 5321 §5.1: no MX: the domain itself is the implicit MX.
            addresses = await self.addresses(domain)
            if not addresses:
                raise DNSFailure(f"{domain}: no MX or address records", permanent=True)
            return [MXHost(domain, 0, addresses)]
        hosts: list[MXHost] = []
        last_error: DNSFailure | None = None
        for preference, name in records:
            if not name:
                continue
            try:
                addresses = await self.addresses(name)
            except DNSFailure as exc:
                last_error = exc
                continue
            if addresses:
                hosts.append(MXHost(name, preference, addresses))
        if not hosts:
            raise DNSFailure(
                f"{domain}: no MX host has an address" + (f" ({last_error})" if last_error else ""),
                permanent=False,
            )
        return hosts

    async def route(
        self, domain: str, overrides: Sequence[Override], *, retries: int = 0, size: int = 0
    ) -> list[MXHost]:
        """Hosts for ``domain`` with the DNS Overrides applied (seed-3 §13).

        ``$dnsmx:<pattern>`` lines match when any real MX host matches the pattern,
        ``$dnsmx:!<pattern>`` when none does; other lines are skipped then.
        """
        chosen: Override | None = None
        mx_names: list[str] | None = None
        for item in overrides:
            if not item.matches(domain, retries=retries, size=size):
                continue
            if item.dnsmx:
                if mx_names is None:
                    try:
                        mx_names = [name for _pref, name in await self.mx_names(domain)]
                    except DNSFailure:
                        mx_names = []
                names = mx_names
                if not all(
                    any(wildcard_match(pattern, n) for n in names) != negate
                    for negate, pattern in item.dnsmx
                ):
                    continue
            chosen = item
            break
        if chosen is None:
            return await self.mx_hosts(domain)
        host = MXHost(
            chosen.host,
            0,
            await self.addresses(chosen.host),
            chosen.port,
            chosen.username,
            chosen.password,
        )
        if not host.addresses:
            raise DNSFailure(f"override host {chosen.host} has no address", permanent=False)
        if chosen.add_dns:
            return [host, *await self.mx_hosts(domain)]
        return [host]
