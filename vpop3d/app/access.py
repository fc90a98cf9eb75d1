"""Who may connect, relay and keep trying: IP rules, anti-relay settings, IDS, throttles.

Reads the admin's settings (JSON values in the settings table) on every call, so
edits apply at once; the pure decisions live in ``core.netrule``, ``core.policy``
and ``core.throttle``. Settings keys, with their defaults:

``<service>.access_rules``     list of rule objects (below); default Block Routers,
                               Allow Local Networks (seed-4 §15 "Defaults")
``access.global_rules``        the global list (seed-4 §3); default empty
``<service>.use_global_access`` also apply the global list when the service has one
``smtp.anti_relay_mode``       ``check-client-ip`` | ``no-checks`` | ``check-lan`` |
                               ``check-from-address``
``smtp.require_auth`` ...      the :class:`RelaySettings` fields, each overridable per
                               listener as ``smtp.<listener>.<field>``
``smtp.pop_before_smtp_minutes`` POP3-before-SMTP window (default 10)
``ids.*``                      IDS/IPS numbers (seed-4 §7.10)
``smtp.connections_per_minute`` per-IP connection rate (0: off)
``smtp.auth_ban_failures`` / ``smtp.auth_ban_minutes``  ban after N failed AUTHs
``ids.never_block``            CIDR strings never blocked (L7071-7081)
``ids.logging`` / ``ids.log_filename`` / ``ids.log_format``  the IDS log (L7009)

A rule object: ``{"allow": true, "type": "network", "address": "192.168.1.0/24",
"allow_unauth": false, "users": ["paul"]}``; ``type`` is one of ``network``,
``routers``, ``local-nets``, ``geoip`` (``address`` holds the tags), ``any``,
``any-ipv4``, ``any-ipv6``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from vpop3d.core.netrule import (
    AccessRule,
    CIDRError,
    GeoIPLookup,
    NetworkFacts,
    RuleType,
    Verdict,
    combine,
    default_rules,
    evaluate,
    parse_cidr,
)
from vpop3d.core.policy import AntiRelayMode, Client, RelaySettings
from vpop3d.core.reply import LoginFailed, Reply
from vpop3d.core.sasl import Credentials, ScramKeys
from vpop3d.core.throttle import (
    DEFAULT_IDS_FORMAT,
    FailureBan,
    IDSEvent,
    IDSScorer,
    RateLimiter,
    format_ids_line,
)
from vpop3d.ports import Authenticator, LoginContext, Principal, SMTPContext

__all__ = [
    "ACCESS_DENIED",
    "BLOCKED",
    "TOO_FAST",
    "AccessAwareAuthenticator",
    "AccessControl",
    "SettingsReader",
    "facts_from_proc_route",
    "rule_from_json",
    "rule_to_json",
]

# seed-4 §7.10 block text, wrapped for SMTP; POP3/IMAP/web wrap ``BLOCKED.text``.
BLOCKED = Reply(421, "4.7.0", "Server access temporarily blocked! Please try again later")
TOO_FAST = Reply(421, "4.7.0", "Too many connections from your address, try again later")
# IP access table refusal (seed-4 §20.2: "-ERR / * BYE / HTTP 403" for other services).
ACCESS_DENIED = Reply(554, "5.7.1", "Access denied")

# Listeners that are Message Submission Agents: AUTH required by default (L1520).
_SUBMISSION_LISTENERS = frozenset({"submission", "smtps"})


def facts_from_proc_route(text: str) -> NetworkFacts:
    """Routers and directly attached IPv4 networks from Linux ``/proc/net/route``.

    Rows with gateway 0 are attached networks; the default route's gateway is a
    router (seed-4 §15). Loopback networks are always local. Malformed rows are
    skipped, so a missing or odd file just yields the loopbacks.
    """
    routers: list[str] = []
    nets: list[str] = ["127.0.0.0/8", "::1/128"]
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, gateway, mask = (
                ipaddress.IPv4Address(int(value, 16).to_bytes(4, "little"))
                for value in (fields[1], fields[2], fields[7])
            )
        except ValueError:
            continue
        if int(dest) == 0 and int(mask) == 0:
            if int(gateway):
                routers.append(str(gateway))
        elif int(gateway) == 0:
            try:
                nets.append(str(ipaddress.IPv4Network(f"{dest}/{mask}")))
            except ValueError:
                continue
    return NetworkFacts.of(routers, nets)


class SettingsReader(Protocol):
    """The part of ``app.settings.Settings`` this module reads."""

    def get(self, key: str, default: Any = None) -> Any: ...


def rule_from_json(value: Mapping[str, Any]) -> AccessRule:
    """Build a rule from its stored JSON form; ValueError when malformed."""
    kind = RuleType(str(value.get("type", "network")))
    allow = bool(value.get("allow", False))
    users = frozenset(str(u).casefold() for u in value.get("users", ()) or ())
    unauth = bool(value.get("allow_unauth", False))
    address = str(value.get("address", ""))
    if kind is RuleType.NETWORK:
        network, _ = parse_cidr(address)
        return AccessRule(allow, kind, network, allow_unauth=unauth, users=users)
    if kind is RuleType.GEOIP:
        tags = AccessRule.geoip(allow, address).tags
        return AccessRule(allow, kind, tags=tags, allow_unauth=unauth, users=users)
    return AccessRule(allow, kind, allow_unauth=unauth, users=users)


def rule_to_json(rule: AccessRule) -> dict[str, Any]:
    """The stored JSON form of a rule (the web admin writes these)."""
    address = ""
    if rule.network is not None:
        address = str(rule.network)
    elif rule.tags:
        address = ",".join(rule.tags)
    return {
        "allow": rule.allow,
        "type": rule.type.value,
        "address": address,
        "allow_unauth": rule.allow_unauth,
        "users": sorted(rule.users),
    }


class AccessControl:
    """Connection admission, relay settings and per-IP state for every service."""

    _log = Logger()

    def __init__(
        self,
        settings: SettingsReader,
        clock: IReactorTime,
        *,
        facts: NetworkFacts | None = None,
        geoip: GeoIPLookup | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self._clock = clock
        self.facts = facts if facts is not None else NetworkFacts.of([], ["127.0.0.0/8", "::1"])
        self._geoip = geoip
        self.ids = IDSScorer()
        self._pop_logins: dict[str, tuple[str, float]] = {}
        self._rate: RateLimiter | None = None
        self._rate_key = 0
        self._bans: FailureBan | None = None
        self._ban_key: tuple[int, float] = (0, 0.0)

    # ------------------------------------------------------------ settings

    def _get(self, key: str, default: Any) -> Any:
        return self._settings.get(key, default)

    def _rules(self, key: str, fallback: Iterable[AccessRule]) -> list[AccessRule]:
        raw = self._get(key, None)
        if raw is None:
            return list(fallback)
        rules: list[AccessRule] = []
        for item in raw if isinstance(raw, list) else []:
            try:
                rules.append(rule_from_json(item))
            except (ValueError, TypeError, AttributeError, CIDRError):
                self._log.warn("ignoring bad access rule {rule!r} in {key}", rule=item, key=key)
        return rules

    def verdict(self, service: str, ip: str) -> Verdict:
        """The service's IP access table combined with the global one (seed-4 §3)."""
        own = self._rules(f"{service}.access_rules", default_rules())
        global_rules = self._rules("access.global_rules", ())
        use_global = bool(self._get(f"{service}.use_global_access", False))
        return combine(
            own, global_rules, ip, use_global=use_global, facts=self.facts, geoip=self._geoip
        )

    def relay_settings(self, listener: str) -> RelaySettings:
        """RelaySettings for one SMTP listener; listener keys override ``smtp.*``."""
        submission = listener in _SUBMISSION_LISTENERS
        defaults = RelaySettings(
            require_auth=submission,
            no_auth_for_incoming=not submission,
        )

        def pick(name: str, default: Any) -> Any:
            value = self._get(f"smtp.{listener}.{name}", None)
            return value if value is not None else self._get(f"smtp.{name}", default)

        try:
            mode = AntiRelayMode(pick("anti_relay_mode", defaults.mode.value))
        except ValueError:
            mode = AntiRelayMode.CHECK_CLIENT_IP
        return RelaySettings(
            mode=mode,
            require_auth=bool(pick("require_auth", defaults.require_auth)),
            require_pop_before_smtp=bool(
                pick("require_pop_before_smtp", defaults.require_pop_before_smtp)
            ),
            no_auth_for_incoming=bool(pick("no_auth_for_incoming", defaults.no_auth_for_incoming)),
            reject_unrecognised=bool(pick("reject_unrecognised", defaults.reject_unrecognised)),
            reject_percent=bool(pick("reject_percent", defaults.reject_percent)),
            reject_bang=bool(pick("reject_bang", defaults.reject_bang)),
            unrecognised_local_as_outgoing=bool(
                self._get("localmail.unrecognised_as_outgoing", False)
            ),
        )

    # ------------------------------------------------------------ SMTP client facts

    def client(self, context: SMTPContext) -> Client:
        """Facts about an SMTP client for ``core.policy``."""
        verdict = self.verdict("smtp", context.peer_ip)
        return Client(
            verdict,
            username=context.principal.username if context.principal else None,
            pop_user=self.pop_user(context.peer_ip),
            on_lan=self.on_lan(context.peer_ip),
        )

    def on_lan(self, ip: str) -> bool:
        """In a detected local network: the portable "Check from LAN" (seed-4 §7.2)."""
        return evaluate([AccessRule(True, RuleType.LOCAL_NETS)], ip, self.facts).allowed

    # ------------------------------------------------------------ POP3 before SMTP

    def record_pop_login(self, ip: str, username: str) -> None:
        """Remember a successful POP3 login (seed-4 §7.1; called by the POP3 app)."""
        self._pop_logins[ip] = (username, self._clock.seconds())

    def pop_user(self, ip: str) -> str | None:
        entry = self._pop_logins.get(ip)
        if entry is None:
            return None
        minutes = float(self._get("smtp.pop_before_smtp_minutes", 10))
        username, at = entry
        if self._clock.seconds() - at > minutes * 60:
            del self._pop_logins[ip]
            return None
        return username

    # ------------------------------------------------------------ admission and IDS

    def _configure_ids(self) -> None:
        ids = self.ids
        ids.threshold = int(self._get("ids.block_threshold", 1000))
        ids.monitor_seconds = float(self._get("ids.monitor_minutes", 60)) * 60
        ids.block_seconds = float(self._get("ids.block_minutes", 30)) * 60
        ids.reblock_value = int(self._get("ids.reblock_value", 800))
        overrides = self._get("ids.multipliers", {})
        if isinstance(overrides, dict):
            for number, weight in overrides.items():
                try:
                    ids.multipliers[IDSEvent(int(number))] = int(weight)
                except ValueError:
                    continue
        self._sync_never_block()

    def _sync_never_block(self) -> None:
        """The Never Block list (``ids.never_block``: CIDR strings, seed-4 §7.10)."""
        raw = self._get("ids.never_block", [])
        wanted: list[str] = []
        for item in raw if isinstance(raw, list) else []:
            try:
                wanted.append(str(parse_cidr(str(item))[0]))
            except CIDRError:
                self._log.warn("ignoring bad Never Block entry {entry!r}", entry=item)
        current = [str(n) for n in self.ids.never_block]
        if wanted == current:
            return
        self.ids.never_block = []
        for cidr in wanted:
            self.ids.add_never_block(cidr)  # also lifts matching blocks (L7079)

    def block(self, cidr: str, minutes: float, reason: str = "manual") -> None:
        """Add a Block List entry by hand or from an SMTP rule (L7067-7069)."""
        self.ids.block(cidr, self._clock.seconds(), minutes * 60, reason)

    def _rate_limiter(self) -> RateLimiter | None:
        per_minute = int(self._get("smtp.connections_per_minute", 0))
        if per_minute <= 0:
            return None
        if self._rate is None or self._rate_key != per_minute:
            self._rate = RateLimiter(per_minute / 60.0, float(per_minute))
            self._rate_key = per_minute
        return self._rate

    def _ban(self) -> FailureBan | None:
        failures = int(self._get("smtp.auth_ban_failures", 0))
        minutes = float(self._get("smtp.auth_ban_minutes", 30))
        if failures <= 0:
            return None
        if self._bans is None or self._ban_key != (failures, minutes):
            self._bans = FailureBan(failures, minutes * 60, minutes * 60)
            self._ban_key = (failures, minutes)
        return self._bans

    def admit(self, ip: str) -> Reply | None:
        """At each new connection on any service: IDS block list, auth bans, rate."""
        now = self._clock.seconds()
        self._configure_ids()
        if self.ids.check(ip, now):
            self._log.info("refused {ip}: IDS block", ip=ip)
            self.record(ip, IDSEvent.IP_BLOCKED)
            return BLOCKED
        bans = self._ban()
        if bans is not None and bans.banned_until(ip, now) is not None:
            self._log.info("refused {ip}: too many failed logins", ip=ip)
            return BLOCKED
        limiter = self._rate_limiter()
        if limiter is not None and not limiter.allow(ip, now):
            self._log.info("refused {ip}: connection rate", ip=ip)
            return TOO_FAST
        return None

    def connection_refusal(self, service: str, ip: str, listener: str = "") -> Reply | None:
        """Everything checked when a connection arrives, for any service.

        IDS/bans/rate first (:meth:`admit`), then the service's IP access table. For
        SMTP in Check Client IP mode the table only governs relaying, so anyone may
        connect to deliver to local recipients (seed-4 §7.2, L6620).
        """
        refusal = self.admit(ip)
        if refusal is not None:
            return refusal
        if service == "smtp":
            mode = self.relay_settings(listener or "smtp").mode
            if mode is AntiRelayMode.CHECK_CLIENT_IP:
                return None
        if not self.verdict(service, ip).allowed:
            self._log.info("refused {ip}: {service} access restrictions", ip=ip, service=service)
            return ACCESS_DENIED
        return None

    def record(self, ip: str, event: IDSEvent, extra: str = "") -> None:
        """Log an IDS event; it counts at the IP's next connection (L7049)."""
        now = self._clock.seconds()
        self.ids.record(ip, event, now)
        if self._log_dir is None or not self._get("ids.logging", False):
            return
        fmt = str(self._get("ids.log_format", DEFAULT_IDS_FORMAT))
        name = Path(str(self._get("ids.log_filename", "ids.log"))).name or "ids.log"
        line = format_ids_line(fmt, datetime.fromtimestamp(now, UTC), ip, event, extra)
        try:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            with (self._log_dir / name).open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError:
            self._log.failure("cannot write the IDS log")

    def auth_failed(self, ip: str) -> None:
        """A failed login from ``ip``: IDS event 0 and the failure-ban counter."""
        self.record(ip, IDSEvent.AUTH_FAILURE)
        bans = self._ban()
        if bans is not None and bans.record_failure(ip, self._clock.seconds()):
            self._log.warn("banning {ip} after repeated failed logins", ip=ip)


class AccessAwareAuthenticator:
    """Wraps an ``ports.Authenticator``: failed logins feed the IDS and the ban
    counter, and POP3 logins open the POP3-before-SMTP window (seed-4 §7.1, §7.10)."""

    def __init__(self, inner: Authenticator, access: AccessControl) -> None:
        self._inner = inner
        self._access = access

    def authenticate(self, credentials: Credentials, context: LoginContext) -> Deferred[Principal]:
        def succeeded(principal: Principal) -> Principal:
            if context.service.startswith("pop3"):
                self._access.record_pop_login(context.peer_ip, principal.username)
            return principal

        def failed(failure: Failure) -> Failure:
            if failure.check(LoginFailed):
                self._access.auth_failed(context.peer_ip)
            return failure

        return self._inner.authenticate(credentials, context).addCallbacks(succeeded, failed)

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        return self._inner.scram_keys(username)

    def plaintext_equivalent_enabled(self) -> bool:
        return self._inner.plaintext_equivalent_enabled()
