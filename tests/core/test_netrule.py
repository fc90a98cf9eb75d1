"""IP access restriction tables (seed-4 §3, §15; seed-7 CIDR checks 23-25)."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.netrule import (
    AccessRule,
    CIDRError,
    NetworkFacts,
    RuleType,
    combine,
    default_rules,
    evaluate,
    ip_in_patterns,
    normalise_ip,
    parse_cidr,
    parse_ip_range,
    sort_rules,
)

FACTS = NetworkFacts.of(
    routers=["192.168.66.1"], local_nets=["127.0.0.0/8", "192.168.66.0/24", "::1/128"]
)


@pytest.mark.parametrize(
    ("text", "network", "host_bits"),
    [
        ("192.168.72.15/24", "192.168.72.0/24", True),
        ("192.168.72.0/24", "192.168.72.0/24", False),
        ("192.168.72.15/29", "192.168.72.8/29", True),
        ("192.168.3.0/255.255.255.240", "192.168.3.0/28", False),
        ("192.168.3.72", "192.168.3.72/32", False),
        ("2001:db8::1/64", "2001:db8::/64", True),
        ("::1", "::1/128", False),
        (" 10.0.0.0/8 ", "10.0.0.0/8", False),
    ],
)
def test_parse_cidr(text: str, network: str, host_bits: bool) -> None:
    """CIDR parses to the network address, flagging host bits (seed-7 checks 23-24)."""
    assert parse_cidr(text) == (ipaddress.ip_network(network), host_bits)


@pytest.mark.parametrize(
    "text",
    ["10.0.0.0/255.0.255.0", "10.0.0.0/33", "2001:db8::/129", "nonsense", "1.2.3.4/x", ""],
)
def test_parse_cidr_rejects(text: str) -> None:
    """Non-contiguous masks, out-of-range prefixes and junk are refused."""
    with pytest.raises(CIDRError):
        parse_cidr(text)


def test_cidr_containment() -> None:
    """192.168.72.15/29 contains .8-.15 and not .16; /24 contains .182 not 73.1."""
    rules = [AccessRule.net(True, "192.168.72.15/29")]
    assert evaluate(rules, "192.168.72.8").allowed
    assert evaluate(rules, "192.168.72.15").allowed
    assert not evaluate(rules, "192.168.72.16").allowed
    wide = [AccessRule.net(True, "192.168.72.15/24")]
    assert evaluate(wide, "192.168.72.182").allowed
    assert not evaluate(wide, "192.168.73.1").allowed


def test_ipv4_mapped_is_unwrapped() -> None:
    """seed-7 check 25: ::ffff:127.0.0.1 is 127.0.0.1 for rules; ::1 is not."""
    rules = [AccessRule.net(False, "127.0.0.1/32"), AccessRule(True, RuleType.ANY)]
    assert not evaluate(rules, "::ffff:127.0.0.1").allowed
    assert evaluate(rules, "::1").allowed
    assert str(normalise_ip("::ffff:127.0.0.1")) == "127.0.0.1"


def test_most_specific_first() -> None:
    """seed-4 check 46: Allow /8 entered before Block /32 still blocks the host."""
    rules = [AccessRule.net(True, "127.0.0.0/8"), AccessRule.net(False, "127.0.0.1/32")]
    assert not evaluate(rules, "127.0.0.1").allowed
    assert evaluate(rules, "127.0.0.2").allowed


def test_sort_order_matches_manual_example() -> None:
    """Hosts → Routers → networks by prefix → Local Nets → GeoIP → Any."""
    rules = [
        AccessRule(True, RuleType.ANY),
        AccessRule.geoip(False, "RU,CN"),
        AccessRule(True, RuleType.LOCAL_NETS),
        AccessRule.net(True, "192.168.66.0/24"),
        AccessRule(False, RuleType.ROUTERS),
        AccessRule.net(True, "12.122.56.77/32", allow_unauth=True),
    ]
    kinds = [r.type for r in sort_rules(rules)]
    assert kinds == [
        RuleType.NETWORK,
        RuleType.ROUTERS,
        RuleType.NETWORK,
        RuleType.LOCAL_NETS,
        RuleType.GEOIP,
        RuleType.ANY,
    ]


def test_defaults_block_routers_allow_local_nets() -> None:
    """seed-4 check 49: Defaults = Block Routers, Allow Local Networks."""
    rules = default_rules()
    assert len(rules) == 2
    assert not evaluate(rules, "192.168.66.1", FACTS).allowed
    assert evaluate(rules, "192.168.66.20", FACTS).allowed
    assert evaluate(rules, "127.0.0.1", FACTS).allowed
    assert not evaluate(rules, "203.0.113.9", FACTS).allowed


def test_no_match_denies() -> None:
    """No matching row is a deny (seed-4 §21 item 10)."""
    verdict = evaluate([AccessRule.net(True, "10.0.0.0/8")], "192.0.2.1")
    assert verdict.rule is None
    assert not verdict.allowed
    assert not verdict.permits_user("fred")


def test_any_family_rules() -> None:
    """Any IPv4 / Any IPv6 match only their family."""
    v4 = [AccessRule(True, RuleType.ANY_IPV4)]
    v6 = [AccessRule(True, RuleType.ANY_IPV6)]
    assert evaluate(v4, "192.0.2.1").allowed
    assert not evaluate(v4, "2001:db8::1").allowed
    assert evaluate(v6, "2001:db8::1").allowed
    assert not evaluate(v6, "192.0.2.1").allowed


def test_users_column() -> None:
    """An empty Users list means everyone; otherwise only the listed users."""
    anyone = evaluate([AccessRule(True, RuleType.ANY)], "192.0.2.1")
    assert anyone.permits_user("alice")
    assert anyone.permits_user(None)
    paul_only = evaluate([AccessRule.net(True, "0.0.0.0/0", users=["Paul"])], "192.0.2.1")
    assert paul_only.permits_user("paul")
    assert not paul_only.permits_user("alice")
    assert not paul_only.permits_user(None)


def test_allow_unauth_flag() -> None:
    """Allow Unauth is carried only by an allowing row."""
    rules = [AccessRule.net(True, "127.0.0.1", allow_unauth=True)]
    assert evaluate(rules, "127.0.0.1").allow_unauth
    blocked = [AccessRule(False, RuleType.ANY, allow_unauth=True)]
    assert not evaluate(blocked, "127.0.0.1").allow_unauth


def test_geoip_rule_uses_live_lookup() -> None:
    """seed-4 check 48: tags from the injected lookup; any listed tag matches."""
    table = {"127.0.0.1": ["ZZ"]}
    rules = [AccessRule.geoip(False, "XX;ZZ"), AccessRule(True, RuleType.ANY)]
    assert not evaluate(rules, "127.0.0.1", geoip=lambda ip: table.get(str(ip), [])).allowed
    table["127.0.0.1"] = ["YY"]
    assert evaluate(rules, "127.0.0.1", geoip=lambda ip: table.get(str(ip), [])).allowed
    assert evaluate(rules, "127.0.0.1").allowed  # no lookup configured: no GeoIP match


def test_global_combination() -> None:
    """seed-4 check 47: the global list applies when enabled or when the service list is empty."""
    service = [AccessRule.net(True, "127.0.0.0/8")]
    global_rules = [AccessRule.net(False, "127.0.0.2/32"), AccessRule(True, RuleType.ANY)]
    assert combine(service, global_rules, "127.0.0.2").allowed
    assert not combine(service, global_rules, "127.0.0.2", use_global=True).allowed
    assert combine(service, global_rules, "127.0.0.3", use_global=True).allowed
    assert not combine([], global_rules, "127.0.0.2").allowed
    assert combine([], global_rules, "127.0.0.3").allowed
    assert not combine([], [], "127.0.0.3").allowed


def test_global_allow_does_not_override_service_block() -> None:
    """Most restrictive wins: a service block stays a block."""
    service = [AccessRule.net(False, "127.0.0.5")]
    global_rules = [AccessRule(True, RuleType.ANY)]
    assert not combine(service, global_rules, "127.0.0.5", use_global=True).allowed


@pytest.mark.parametrize(
    ("ip", "patterns", "expected"),
    [
        ("127.0.0.9", ["127.0.0.*"], True),
        ("127.0.1.9", ["127.0.0.*"], False),
        ("192.168.1.11", ["192.168.1.10", "192.168.1.11"], True),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("::ffff:10.1.2.3", ["10.*"], True),
        ("10.1.2.3", ["garbage", ""], False),
        ("192.168.1.15", ["192.168.1.10-192.168.1.20"], True),
        ("192.168.1.21", ["192.168.1.10 - 192.168.1.20"], False),
        ("2001:db8::5", ["2001:db8::1-2001:db8::9"], True),
        ("10.0.0.5", ["10.0.0.9-10.0.0.1", "10.0.0.1-::9"], False),
    ],
)
def test_ip_in_patterns(ip: str, patterns: list[str], expected: bool) -> None:
    """Textual IP wildcards and CIDRs (Reserve Sessions list, seed-7 check 45)."""
    assert ip_in_patterns(ip, patterns) is expected


@given(st.text(alphabet="0123456789abcdef.:/-% x*", max_size=40))
def test_parsers_raise_only_cidr_error(text: str) -> None:
    """Property: CIDR/range parsing raises only CIDRError; pattern matching never raises."""
    for parse in (parse_cidr, parse_ip_range):
        with contextlib.suppress(CIDRError):
            parse(text)
    assert ip_in_patterns("192.0.2.1", [text]) in (True, False)
