"""Rate limits, failure bans, IDS scoring and session slots, with time passed in.

Every method takes ``now`` (seconds, e.g. ``clock.seconds()``) so tests drive time
with ``task.Clock`` and nothing here reads the wall clock.

* :class:`TokenBucket` / :class:`RateLimiter`: connections per second per IP.
* :class:`FailureBan`: ban an IP after N failed AUTHs within a window.
* :class:`IDSScorer`: the IDS/IPS algorithm of seed-4 §7.10 (weighted events, block
  threshold, block time, re-block seed, Never Block list), evaluated at connect.
* :class:`SessionSlots`: Load Limiting's incoming-session caps (seed-4 §7.5).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum

from vpop3d.core.netrule import IPNetwork, ip_in_patterns, normalise_ip, parse_cidr

__all__ = [
    "DEFAULT_IDS_FORMAT",
    "EVENT_TEXT",
    "BlockEntry",
    "FailureBan",
    "IDSEvent",
    "IDSScorer",
    "RateLimiter",
    "SessionSlots",
    "TokenBucket",
    "format_ids_line",
]


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; one token per event."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def full_at(self, now: float) -> bool:
        """True when the bucket would be full at ``now`` (safe to forget)."""
        if self.tokens < 0:
            return True
        return self.tokens + max(0.0, now - self.stamp) * self.rate >= self.burst


class RateLimiter:
    """One token bucket per key (e.g. client IP); ``rate <= 0`` disables it."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, key: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self.prune(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(now)

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled; they carry no state any more."""
        for key in [k for k, b in self._buckets.items() if b.full_at(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class FailureBan:
    """Ban a key for ``ban_seconds`` after ``threshold`` failures in ``window``."""

    def __init__(self, threshold: int, window: float, ban_seconds: float) -> None:
        self.threshold = threshold
        self.window = window
        self.ban_seconds = ban_seconds
        self._failures: dict[str, deque[float]] = {}
        self._banned: dict[str, float] = {}

    def record_failure(self, key: str, now: float) -> bool:
        """Count one failure; True when this failure starts a ban."""
        if self.threshold <= 0:
            return False
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.threshold:
            self._banned[key] = now + self.ban_seconds
            del self._failures[key]
            return True
        return False

    def record_success(self, key: str) -> None:
        self._failures.pop(key, None)

    def banned_until(self, key: str, now: float) -> float | None:
        """When the ban ends, or None when ``key`` is not banned at ``now``."""
        until = self._banned.get(key)
        if until is None:
            return None
        if until <= now:
            del self._banned[key]
            return None
        return until

    def unban(self, key: str) -> None:
        self._banned.pop(key, None)


# ------------------------------------------------------------------ IDS/IPS


class IDSEvent(IntEnum):
    """IDS event numbers (seed-4 §7.10, manual L7017-7033)."""

    AUTH_FAILURE = 0
    RELAY_DENIED = 1
    RELAY_ALLOWED = 2
    BAD_LOCAL_RCPT = 3
    GOOD_LOCAL_RCPT = 4
    SPAM = 5
    VIRUS = 6
    RULE_REJECT = 7
    DNSBL = 8
    SYNTAX_ERROR = 9
    TOO_BIG = 10
    FILTERED_ATTACHMENT = 11
    PARTIAL_ATTACHMENT = 12
    SPF_REJECT = 13
    IP_BLOCKED = 900


EVENT_TEXT: Mapping[IDSEvent, str] = {
    IDSEvent.AUTH_FAILURE: "SMTP authentication failure",
    IDSEvent.RELAY_DENIED: "Relay denied",
    IDSEvent.RELAY_ALLOWED: "Relay allowed",
    IDSEvent.BAD_LOCAL_RCPT: "Bad local recipient",
    IDSEvent.GOOD_LOCAL_RCPT: "Good local recipient",
    IDSEvent.SPAM: "Message detected as spam",
    IDSEvent.VIRUS: "Message contains a virus",
    IDSEvent.RULE_REJECT: "SMTP Rule matched",
    IDSEvent.DNSBL: "Realtime DNS blacklist match",
    IDSEvent.SYNTAX_ERROR: "SMTP syntax error",
    IDSEvent.TOO_BIG: "Message bigger than max size",
    IDSEvent.FILTERED_ATTACHMENT: "Filtered attachment",
    IDSEvent.PARTIAL_ATTACHMENT: "Partial attachment",
    IDSEvent.SPF_REJECT: "SPF rejection",
    IDSEvent.IP_BLOCKED: "IP address blocked",
}

DEFAULT_IDS_FORMAT = "%T - %I - %e %E - %D"  # manual L7009


def format_ids_line(fmt: str, when: datetime, ip: str, event: IDSEvent, extra: str = "") -> str:
    """Expand the IDS log tokens (L7009-7015): %T UTC ISO 8601, %I, %e, %E, %D, %%."""
    values = {
        "T": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "I": ip,
        "e": str(int(event)),
        "E": EVENT_TEXT.get(event, "Event"),
        "D": extra.replace("\r", " ").replace("\n", " "),
        "%": "%",
    }
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in values:
            out.append(values[fmt[i + 1]])
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


DEFAULT_MULTIPLIERS: Mapping[IDSEvent, int] = {
    IDSEvent.AUTH_FAILURE: 50,
    IDSEvent.RELAY_DENIED: 100,
    IDSEvent.RELAY_ALLOWED: 1,
    IDSEvent.BAD_LOCAL_RCPT: 50,
    IDSEvent.GOOD_LOCAL_RCPT: 0,
    IDSEvent.SPAM: 50,
    IDSEvent.VIRUS: 200,
    IDSEvent.RULE_REJECT: 200,
    IDSEvent.DNSBL: 200,
    IDSEvent.SYNTAX_ERROR: 50,
    IDSEvent.TOO_BIG: 10,
    IDSEvent.FILTERED_ATTACHMENT: 50,
    IDSEvent.PARTIAL_ATTACHMENT: 100,
    IDSEvent.SPF_REJECT: 0,
}


_MAX_EVENTS_PER_IP = 5000


@dataclass(frozen=True, slots=True)
class BlockEntry:
    network: IPNetwork
    added: float
    expires: float
    reason: str


@dataclass(slots=True)
class IDSScorer:
    """Score events per IP; decide at each new connection (manual L7041-7063).

    Events are stored unweighted, so a changed multiplier applies retroactively
    (L7055). Only events newer than the IP's latest block count, so that after a
    block expires the Re-Block seed (800) plus a few new events re-blocks it
    (seed-4 §7.10 proposal).
    """

    threshold: int = 1000
    monitor_seconds: float = 3600.0
    block_seconds: float = 1800.0
    reblock_value: int = 800
    multipliers: dict[IDSEvent, int] = field(default_factory=lambda: dict(DEFAULT_MULTIPLIERS))
    never_block: list[IPNetwork] = field(default_factory=list)
    blocks: list[BlockEntry] = field(default_factory=list)
    _events: dict[str, list[tuple[float, IDSEvent]]] = field(default_factory=dict)

    def record(self, ip: str, event: IDSEvent, now: float) -> None:
        """Log an event; it is only evaluated at the IP's next connection."""
        key = str(normalise_ip(ip))
        events = self._events.setdefault(key, [])
        events.append((now, event))
        if len(events) > _MAX_EVENTS_PER_IP:  # bound memory for very busy clients
            del events[: len(events) - _MAX_EVENTS_PER_IP]

    def event_count(self, ip: str) -> int:
        """How many events are kept for ``ip`` (the "View Event Log" size)."""
        return len(self._events.get(str(normalise_ip(ip)), ()))

    def add_never_block(self, cidr: str) -> None:
        """Adding a Never Block entry removes matching Block List entries (L7079)."""
        network, _ = parse_cidr(cidr)
        self.never_block.append(network)
        self.blocks = [
            b
            for b in self.blocks
            if not (
                b.network.version == network.version and b.network.subnet_of(network)  # type: ignore[arg-type]  # versions checked
            )
        ]

    def block(self, cidr: str, now: float, seconds: float, reason: str) -> BlockEntry:
        """Add a manual or rule-driven Block List entry."""
        network, _ = parse_cidr(cidr)
        entry = BlockEntry(network, now, now + seconds, reason)
        self.blocks.append(entry)
        return entry

    def _never(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(n.version == ip.version and ip in n for n in self.never_block)

    def prune(self, now: float) -> None:
        """Forget events and blocks that can no longer matter."""
        horizon = now - self.monitor_seconds
        self.blocks = [b for b in self.blocks if b.expires >= horizon]
        for key in list(self._events):
            kept = [(t, e) for t, e in self._events[key] if t > horizon]
            if kept:
                self._events[key] = kept
            else:
                del self._events[key]

    def check(self, ip: str, now: float) -> bool:
        """True when a new connection from ``ip`` must be refused."""
        if len(self._events) > 10_000:
            self.prune(now)
        addr = normalise_ip(ip)
        if self._never(addr):
            return False
        mine = [b for b in self.blocks if b.network.version == addr.version and addr in b.network]
        if any(b.expires > now for b in mine):
            return True
        seed = 0
        since = now - self.monitor_seconds
        if mine:
            latest = max(mine, key=lambda b: b.added)
            if latest.expires >= now - self.monitor_seconds:
                seed = self.reblock_value
            since = max(since, latest.added)
        key = str(addr)
        events = [(t, e) for t, e in self._events.get(key, []) if t > since]
        self._events[key] = [
            (t, e) for t, e in self._events.get(key, []) if t > now - self.monitor_seconds
        ]
        score = seed + sum(self.multipliers.get(e, 0) for _, e in events)
        if score >= self.threshold:
            self.block(key, now, self.block_seconds, f"IDS score {score}")
            return True
        return False


# ------------------------------------------------------------------ Load Limiting


class SessionSlots:
    """Maximum Incoming Sessions, per client, and the reserved pool (seed-4 §7.5).

    Local clients (an Allow Unauth row matched) are exempt. Reserved IPs share
    ``reserved`` slots; everyone else gets at most ``max_total - reserved``.
    """

    def __init__(
        self,
        max_total: int = 50,
        max_per_client: int = 10,
        reserved_for: Iterable[str] = (),
        reserved: int = 0,
    ) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.reserved_for = tuple(reserved_for)
        self.reserved = reserved if self.reserved_for else 0
        self._per_ip: dict[str, int] = {}
        self._open = 0
        self._open_public = 0

    def _is_reserved(self, ip: str) -> bool:
        return bool(self.reserved_for) and ip_in_patterns(ip, self.reserved_for)

    def try_open(self, ip: str, *, local: bool = False) -> bool:
        """Take a slot for a new incoming session; False: refuse with 421."""
        if local:
            return True
        key = str(normalise_ip(ip))
        count = self._per_ip.get(key, 0)
        if self.max_per_client and count >= self.max_per_client:
            return False
        reserved = self._is_reserved(key)
        if self.max_total:
            if self._open >= self.max_total:
                return False
            if not reserved and self._open_public >= self.max_total - self.reserved:
                return False
        self._per_ip[key] = count + 1
        self._open += 1
        if not reserved:
            self._open_public += 1
        return True

    def close(self, ip: str, *, local: bool = False) -> None:
        """Give back the slot taken by :meth:`try_open` for the same ``ip``."""
        if local:
            return
        key = str(normalise_ip(ip))
        count = self._per_ip.get(key, 0)
        if count <= 0:
            return
        if count == 1:
            del self._per_ip[key]
        else:
            self._per_ip[key] = count - 1
        self._open -= 1
        if not self._is_reserved(key):
            self._open_public -= 1

    @property
    def open_sessions(self) -> int:
        return self._open
