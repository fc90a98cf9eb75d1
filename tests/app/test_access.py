"""IP rules, relay settings and throttles read from settings (seed-4 §7, §15)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from tests.app.delivery_support import FACTS
from tests.support.stack import Stack
from vpop3d.app.access import (
    BLOCKED,
    TOO_FAST,
    AccessAwareAuthenticator,
    AccessControl,
    facts_from_proc_route,
    rule_from_json,
    rule_to_json,
)
from vpop3d.core.netrule import AccessRule, RuleType
from vpop3d.core.policy import AntiRelayMode
from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import ScramKeys
from vpop3d.core.throttle import IDSEvent
from vpop3d.ports import LoginContext, Principal, SMTPContext


class DictSettings:
    def __init__(self, **values: Any) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def control(**values: Any) -> tuple[AccessControl, DictSettings, Clock]:
    settings = DictSettings(**values)
    clock = Clock()
    return AccessControl(settings, clock, facts=FACTS), settings, clock


def test_default_rules_when_unset() -> None:
    """No stored table means Block Routers, Allow Local Networks."""
    access, _, _ = control()
    assert access.verdict("pop3", "192.168.66.20").allowed
    assert not access.verdict("pop3", "192.168.66.1").allowed
    assert not access.verdict("pop3", "203.0.113.9").allowed


def test_stored_rules_and_global_list() -> None:
    """seed-4 checks 37 and 47 through settings: Allow Any opens; the global list restricts."""
    access, settings, _ = control()
    settings.values["imap.access_rules"] = [{"allow": True, "type": "any"}]
    assert access.verdict("imap", "203.0.113.9").allowed
    settings.values["access.global_rules"] = [
        {"allow": False, "type": "network", "address": "203.0.113.9"},
        {"allow": True, "type": "any"},
    ]
    assert access.verdict("imap", "203.0.113.9").allowed
    settings.values["imap.use_global_access"] = True
    assert not access.verdict("imap", "203.0.113.9").allowed
    assert access.verdict("imap", "203.0.113.10").allowed


def test_bad_rules_are_skipped() -> None:
    """A malformed stored rule is ignored, not fatal."""
    access, settings, _ = control()
    settings.values["smtp.access_rules"] = [
        {"allow": True, "type": "network", "address": "10.0.0.0/255.0.255.0"},
        {"allow": True, "type": "nonsense"},
        "garbage",
        {"allow": True, "type": "network", "address": "203.0.113.0/24", "users": ["Paul"]},
    ]
    verdict = access.verdict("smtp", "203.0.113.9")
    assert verdict.allowed
    assert verdict.permits_user("paul")
    assert not verdict.permits_user("alice")


@pytest.mark.parametrize(
    "rule",
    [
        AccessRule.net(True, "192.168.1.0/24", allow_unauth=True, users=["paul"]),
        AccessRule(False, RuleType.ROUTERS),
        AccessRule(True, RuleType.LOCAL_NETS),
        AccessRule.geoip(False, "RU,CN"),
        AccessRule(True, RuleType.ANY_IPV6),
    ],
)
def test_rule_json_round_trip(rule: AccessRule) -> None:
    """Rules survive being stored as JSON."""
    assert rule_from_json(rule_to_json(rule)) == rule


def test_relay_settings_defaults_and_overrides() -> None:
    """smtp.* applies to every listener; smtp.<listener>.* overrides; 587 needs AUTH."""
    access, settings, _ = control()
    mta = access.relay_settings("smtp")
    assert mta.mode is AntiRelayMode.CHECK_CLIENT_IP
    assert not mta.require_auth
    assert mta.no_auth_for_incoming
    msa = access.relay_settings("submission")
    assert msa.require_auth
    assert not msa.no_auth_for_incoming
    settings.values["smtp.require_auth"] = True
    settings.values["smtp.extra.require_auth"] = False
    settings.values["smtp.anti_relay_mode"] = "no-checks"
    assert access.relay_settings("smtp").require_auth
    assert not access.relay_settings("extra").require_auth
    assert access.relay_settings("smtp").mode is AntiRelayMode.NO_CHECKS
    settings.values["smtp.anti_relay_mode"] = "bogus"
    assert access.relay_settings("smtp").mode is AntiRelayMode.CHECK_CLIENT_IP


def test_pop_before_smtp_window() -> None:
    """A POP3 login counts for relaying for the configured minutes (default 10)."""
    access, settings, clock = control()
    access.record_pop_login("127.0.0.1", "fred")
    assert access.pop_user("127.0.0.1") == "fred"
    assert access.pop_user("127.0.0.2") is None
    clock.advance(9 * 60)
    assert access.pop_user("127.0.0.1") == "fred"
    clock.advance(2 * 60)
    assert access.pop_user("127.0.0.1") is None
    settings.values["smtp.pop_before_smtp_minutes"] = 1
    access.record_pop_login("127.0.0.1", "fred")
    clock.advance(61)
    assert access.pop_user("127.0.0.1") is None


def test_client_facts() -> None:
    """client() combines the IP verdict, AUTH identity, POP3 login and LAN membership."""
    access, _, _ = control()
    principal = Principal(1, "fred", False, "fred@a.test")
    lan = access.client(SMTPContext("smtp", "192.168.66.20", "h", False, principal))
    assert lan.access.allowed
    assert lan.username == "fred"
    assert lan.on_lan
    outside = access.client(SMTPContext("smtp", "203.0.113.9", "h", False, None))
    assert not outside.access.allowed
    assert not outside.on_lan


def test_ids_blocks_after_auth_failures() -> None:
    """seed-4 check 40: 20 failed AUTHs block the next connection for 30 minutes."""
    access, _, clock = control()
    for _ in range(20):
        access.auth_failed("127.0.0.3")
    assert access.admit("127.0.0.3") == BLOCKED
    assert access.admit("127.0.0.4") is None
    clock.advance(31 * 60)
    assert access.admit("127.0.0.3") is None


def test_ids_settings_apply() -> None:
    """IDS numbers come from settings, including multipliers."""
    access, settings, _ = control()
    settings.values["ids.multipliers"] = {"0": 0}
    for _ in range(20):
        access.auth_failed("127.0.0.3")
    assert access.admit("127.0.0.3") is None
    settings.values["ids.block_threshold"] = 100
    access.record("127.0.0.5", IDSEvent.RELAY_DENIED)
    assert access.admit("127.0.0.5") == BLOCKED


def test_auth_ban_setting() -> None:
    """smtp.auth_ban_failures bans an IP after N failures for the configured minutes."""
    access, settings, clock = control()
    settings.values["smtp.auth_ban_failures"] = 3
    settings.values["smtp.auth_ban_minutes"] = 5
    for _ in range(3):
        access.auth_failed("192.0.2.1")
    assert access.admit("192.0.2.1") == BLOCKED
    clock.advance(5 * 60 + 1)
    assert access.admit("192.0.2.1") is None


def test_connection_rate_limit() -> None:
    """smtp.connections_per_minute limits new connections per IP."""
    access, settings, clock = control()
    assert all(access.admit("192.0.2.1") is None for _ in range(50))
    settings.values["smtp.connections_per_minute"] = 2
    assert access.admit("192.0.2.2") is None
    assert access.admit("192.0.2.2") is None
    assert access.admit("192.0.2.2") == TOO_FAST
    assert access.admit("192.0.2.3") is None
    clock.advance(30)
    assert access.admit("192.0.2.2") is None


def test_reads_real_settings_store(stack: Stack) -> None:
    """AccessControl works over the settings table, seeing edits at once."""
    access = AccessControl(stack.settings, Clock(), facts=FACTS)
    assert not access.verdict("smtp", "203.0.113.9").allowed
    stack.put_setting("smtp.access_rules", [{"allow": True, "type": "any"}])
    assert access.verdict("smtp", "203.0.113.9").allowed
    stack.put_setting("smtp.require_auth", True)
    assert access.relay_settings("smtp").require_auth


ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0142A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0042A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
bad line
eth1\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_facts_from_proc_route() -> None:
    """Linux routes give the default gateway as router and attached networks as local."""
    facts = facts_from_proc_route(ROUTE)
    assert [str(r) for r in facts.routers] == ["192.168.66.1"]
    assert sorted(str(n) for n in facts.local_nets) == sorted(
        ["127.0.0.0/8", "::1/128", "192.168.66.0/24"]
    )
    assert [str(n) for n in facts_from_proc_route("").local_nets] == ["127.0.0.0/8", "::1/128"]


def test_never_block_setting_lifts_blocks() -> None:
    """seed-4 check 41: a Never Block entry stops blocking and removes the block."""
    access, settings, _ = control()
    for _ in range(20):
        access.auth_failed("127.0.0.3")
    assert access.admit("127.0.0.3") == BLOCKED
    settings.values["ids.never_block"] = ["127.0.0.0/24", "not-an-ip"]
    assert access.admit("127.0.0.3") is None
    assert access.ids.blocks == []


def test_manual_block() -> None:
    """seed-4 check 42: a manual /24 block for 1 minute, then access returns."""
    access, _, clock = control()
    access.block("127.0.0.0/24", 1)
    assert access.admit("127.0.0.5") == BLOCKED
    clock.advance(61)
    assert access.admit("127.0.0.5") is None


def test_ids_log_file(tmp_path: Any) -> None:
    """seed-4 check 44: with IDS logging on, an AUTH failure appends a formatted line."""
    import re

    settings = DictSettings()
    clock = Clock()
    clock.advance(1_800_000_000)
    access = AccessControl(settings, clock, facts=FACTS, log_dir=tmp_path)
    access.auth_failed("127.0.0.3")
    assert not (tmp_path / "ids.log").exists()
    settings.values["ids.logging"] = True
    access.auth_failed("127.0.0.3")
    settings.values["ids.log_filename"] = "../escape.log"
    settings.values["ids.log_format"] = "%I|%e"
    access.auth_failed("127.0.0.3")
    [line] = (tmp_path / "ids.log").read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* - 127\.0\.0\.3 - 0 .+ - .*", line)
    assert (tmp_path / "escape.log").read_text() == "127.0.0.3|0\n"


class FakeAuthenticator:
    def authenticate(self, credentials: Any, context: LoginContext) -> Deferred[Principal]:
        if credentials.password == "right":
            return succeed(Principal(7, credentials.username, False, "fred@a.test"))
        return fail(LoginFailed())

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        return succeed(None)

    def plaintext_equivalent_enabled(self) -> bool:
        return True


def test_access_aware_authenticator() -> None:
    """Failed logins count for the IDS; POP3 logins open the POP3-before-SMTP window."""
    from vpop3d.core.sasl import PasswordCredentials

    access, settings, _ = control(**{"smtp.auth_ban_failures": 2})
    auth = AccessAwareAuthenticator(FakeAuthenticator(), access)
    pop = LoginContext("pop3", "192.0.2.5", False)
    smtp = LoginContext("smtp", "192.0.2.6", False)
    good: list[Principal] = []
    auth.authenticate(PasswordCredentials("fred", "right"), pop).addCallback(good.append)
    assert good[0].username == "fred"
    assert access.pop_user("192.0.2.5") == "fred"
    auth.authenticate(PasswordCredentials("fred", "right"), smtp)
    assert access.pop_user("192.0.2.6") is None
    errors: list[object] = []
    for _ in range(2):
        auth.authenticate(PasswordCredentials("fred", "wrong"), smtp).addErrback(errors.append)
    assert len(errors) == 2
    assert access.admit("192.0.2.6") == BLOCKED
    assert auth.plaintext_equivalent_enabled()
    assert settings.values


def test_connection_refusal_per_service() -> None:
    """seed-4 §7.2/§15: POP3 follows its table; SMTP in Check Client IP mode lets anyone in."""
    from vpop3d.app.access import ACCESS_DENIED

    access, settings, _ = control()
    assert access.connection_refusal("pop3", "203.0.113.9") == ACCESS_DENIED
    assert access.connection_refusal("pop3", "192.168.66.20") is None
    assert access.connection_refusal("smtp", "203.0.113.9") is None
    settings.values["smtp.anti_relay_mode"] = "no-checks"
    assert access.connection_refusal("smtp", "203.0.113.9") == ACCESS_DENIED
    access.block("192.168.66.20", 5)
    assert access.connection_refusal("pop3", "192.168.66.20") == BLOCKED
