"""Relay and recipient verdicts (seed-1 checks 14-16, 24, 27, 33-34; seed-4 checks 10-15)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.address import AddressError, parse_mailbox, parse_path
from vpop3d.core.mapping import (
    Directory,
    GroupTarget,
    LocalDomains,
    MappingRow,
    RoutingContext,
    UserTarget,
    resolve,
)
from vpop3d.core.netrule import AccessRule, NetworkFacts, RuleType, Verdict, evaluate
from vpop3d.core.policy import (
    AUTH_REQUIRED,
    BAD_RECIPIENT_SYNTAX,
    MAPPING_LOOP,
    SENDING_INTERNET_DENIED,
    AntiRelayMode,
    Client,
    Disposition,
    GroupSettings,
    RecipientDecision,
    RelaySettings,
    UserSettings,
    check_recipient_syntax,
    decide_recipient,
    effective_settings,
    may_relay,
    outgoing_size_reply,
    rewrite_sender,
)
from vpop3d.core.reply import SMTP_RECIPIENT_UNKNOWN, SMTP_RELAY_DENIED

FACTS = NetworkFacts.of(routers=["192.168.66.1"], local_nets=["192.168.66.0/24"])
DEFAULT_TABLE = [AccessRule(False, RuleType.ROUTERS), AccessRule(True, RuleType.LOCAL_NETS)]
LAN_IP = "192.168.66.20"
INTERNET_IP = "203.0.113.9"
ROUTING = RoutingContext(
    LocalDomains.parse("a.test;b.test"),
    Directory.of(users=["fred", "kate", "bob"], lists=["team"], groups=["office"]),
    [
        MappingRow("someone@elsewhere.test", "fred"),
        MappingRow("mark", "*REMOTE"),
        MappingRow("loop1@a.test", "loop2@a.test"),
    ]
    + [MappingRow(f"c{i}@a.test", f"c{i + 1}@a.test") for i in range(12)],
)


def client(
    ip: str,
    table: list[AccessRule] | None = None,
    *,
    user: str | None = None,
    pop_user: str | None = None,
) -> Client:
    rules = DEFAULT_TABLE if table is None else table
    return Client(evaluate(rules, ip, FACTS), username=user, pop_user=pop_user)


def rcpt(
    path: str,
    who: Client,
    settings: RelaySettings | None = None,
    **kw: object,
) -> RecipientDecision:
    """What the app does for RCPT TO: parse, syntax options, resolve, decide."""
    chosen = settings or RelaySettings()
    mailbox = parse_path(path).mailbox
    assert mailbox is not None
    refusal = check_recipient_syntax(mailbox, chosen)
    if refusal is not None:
        return RecipientDecision(refusal)
    return decide_recipient(chosen, who, resolve(mailbox, ROUTING), **kw)  # type: ignore[arg-type]


def test_check14_unknown_local_recipient_rejected() -> None:
    """Check 14: nosuch@a.test → 550 Recipient not recognised; fred@a.test → accepted."""
    stranger = client(INTERNET_IP)
    assert rcpt("<nosuch@a.test>", stranger).reply == SMTP_RECIPIENT_UNKNOWN
    accepted = rcpt("<fred@a.test>", stranger)
    assert accepted.accepted
    assert accepted.targets == (UserTarget("fred"),)


def test_unrecognised_accepted_when_reject_option_off() -> None:
    """With "Reject unrecognised local recipients" off, the app gets UNRECOGNISED."""
    decision = rcpt(
        "<nosuch@a.test>", client(INTERNET_IP), RelaySettings(reject_unrecognised=False)
    )
    assert decision.accepted
    assert decision.disposition is Disposition.UNRECOGNISED


def test_check15_internet_client_no_open_relay() -> None:
    """Check 15: unauthenticated Internet client: local yes, remote no; AUTH + Allow Any: yes."""
    settings = RelaySettings(require_auth=True)
    stranger = client(INTERNET_IP)
    assert rcpt("<fred@a.test>", stranger, settings).accepted
    assert rcpt("<x@remote.test>", stranger, settings).reply == SMTP_RELAY_DENIED
    # Authenticated but no row allows the IP: still no relay.
    assert rcpt("<x@remote.test>", client(INTERNET_IP, user="fred"), settings).reply == (
        SMTP_RELAY_DENIED
    )
    allow_any = [*DEFAULT_TABLE, AccessRule(True, RuleType.ANY)]
    assert rcpt("<x@remote.test>", client(INTERNET_IP, allow_any), settings).reply == (
        SMTP_RELAY_DENIED
    )
    authed = rcpt("<x@remote.test>", client(INTERNET_IP, allow_any, user="fred"), settings)
    assert authed.accepted
    assert authed.disposition is Disposition.OUTBOUND


def test_check16_local_nets_defaults() -> None:
    """Check 16: LAN relays unauthenticated by default; not once Require SMTP Auth is on."""
    lan = client(LAN_IP)
    assert rcpt("<x@remote.test>", lan).disposition is Disposition.OUTBOUND
    strict = RelaySettings(require_auth=True)
    assert rcpt("<x@remote.test>", lan, strict).reply == SMTP_RELAY_DENIED
    unauth_ok = [
        AccessRule(False, RuleType.ROUTERS),
        AccessRule(True, RuleType.LOCAL_NETS, allow_unauth=True),
    ]
    assert rcpt("<x@remote.test>", client(LAN_IP, unauth_ok), strict).accepted
    assert rcpt("<x@remote.test>", client(LAN_IP, user="fred"), strict).accepted


def test_router_may_not_relay_but_may_deliver_locally() -> None:
    """Block Routers stops relaying from the gateway; inbound local mail still works."""
    router = client("192.168.66.1")
    assert rcpt("<x@remote.test>", router).reply == SMTP_RELAY_DENIED
    assert rcpt("<fred@a.test>", router).accepted


def test_seed4_check12_allow_unauth_row_relays() -> None:
    """seed-4 check 12: Allow 127.0.0.1/32 with Allow Unauth relays without AUTH."""
    table = [AccessRule.net(True, "127.0.0.1/32", allow_unauth=True)]
    settings = RelaySettings(require_auth=True)
    assert rcpt("<x@remote.test>", client("127.0.0.1", table), settings).accepted


def test_seed4_check13_users_column_limits_relay() -> None:
    """seed-4 check 13: Allow Any with Users=paul relays for paul only."""
    table = [AccessRule(True, RuleType.ANY, users=frozenset({"paul"}))]
    settings = RelaySettings(require_auth=True)
    assert rcpt("<x@remote.test>", client(INTERNET_IP, table, user="alice"), settings).reply == (
        SMTP_RELAY_DENIED
    )
    assert rcpt("<x@remote.test>", client(INTERNET_IP, table, user="paul"), settings).accepted


def test_seed4_check14_require_auth_with_incoming_exemption() -> None:
    """seed-4 check 14: Require AUTH + no-auth-for-incoming: local yes, relay no."""
    settings = RelaySettings(require_auth=True, no_auth_for_incoming=True)
    table = [AccessRule(True, RuleType.ANY)]
    assert rcpt("<fred@a.test>", client(INTERNET_IP, table), settings).accepted
    assert rcpt("<x@remote.test>", client(INTERNET_IP, table), settings).reply == SMTP_RELAY_DENIED


def test_require_auth_without_incoming_exemption() -> None:
    """Without the exemption even local delivery needs AUTH (530 5.7.0, RFC 4954 §6)."""
    settings = RelaySettings(require_auth=True, no_auth_for_incoming=False)
    assert rcpt("<fred@a.test>", client(INTERNET_IP), settings).reply == AUTH_REQUIRED
    assert rcpt("<fred@a.test>", client(INTERNET_IP, user="kate"), settings).accepted


def test_seed4_check15_pop_before_smtp() -> None:
    """seed-4 check 15: with only POP3-then-SMTP on, a recent POP3 login enables relay."""
    settings = RelaySettings(require_pop_before_smtp=True)
    table = [AccessRule(True, RuleType.ANY)]
    assert rcpt("<x@remote.test>", client("127.0.0.1", table), settings).reply == SMTP_RELAY_DENIED
    assert rcpt("<x@remote.test>", client("127.0.0.1", table, pop_user="fred"), settings).accepted
    # A POP3 login does not count when only Require SMTP Authentication is on.
    auth_only = RelaySettings(require_auth=True)
    assert rcpt(
        "<x@remote.test>", client("127.0.0.1", table, pop_user="fred"), auth_only
    ).reply == (SMTP_RELAY_DENIED)


@pytest.mark.parametrize(
    ("mode", "who", "sender_is_local", "allowed"),
    [
        (AntiRelayMode.NO_CHECKS, Client(Verdict(None)), False, True),
        (AntiRelayMode.CHECK_LAN, Client(Verdict(None), on_lan=True), False, True),
        (AntiRelayMode.CHECK_LAN, Client(Verdict(None)), False, False),
        (AntiRelayMode.CHECK_FROM_ADDRESS, Client(Verdict(None)), True, True),
        (AntiRelayMode.CHECK_FROM_ADDRESS, Client(Verdict(None)), False, False),
        (AntiRelayMode.CHECK_FROM_ADDRESS, Client(Verdict(None), username="fred"), False, True),
        (AntiRelayMode.CHECK_CLIENT_IP, Client(Verdict(None)), True, False),
    ],
)
def test_anti_relay_modes(
    mode: AntiRelayMode, who: Client, sender_is_local: bool, allowed: bool
) -> None:
    """The four anti-relay modes of seed-4 §7.2."""
    refusal = may_relay(RelaySettings(mode=mode), who, sender_is_local=sender_is_local)
    assert (refusal is None) is allowed


def test_no_checks_mode_still_honours_require_auth() -> None:
    """No Checks + Require SMTP Authentication: relay needs AUTH."""
    settings = RelaySettings(mode=AntiRelayMode.NO_CHECKS, require_auth=True)
    assert may_relay(settings, Client(Verdict(None))) == SMTP_RELAY_DENIED
    assert may_relay(settings, Client(Verdict(None), username="fred")) is None


def test_check24_foreign_mapping_accepted_unauthenticated() -> None:
    """Check 24: someone@elsewhere.test (mapped to fred) is accepted from a stranger."""
    decision = rcpt("<someone@elsewhere.test>", client(INTERNET_IP))
    assert decision.accepted
    assert decision.targets == (UserTarget("fred"),)


def test_check27_remote_marker_is_relay() -> None:
    """Check 27: mark → *REMOTE goes out for local users; strangers are refused."""
    lan_user = rcpt("<mark@a.test>", client(LAN_IP, user="fred"))
    assert lan_user.disposition is Disposition.OUTBOUND
    assert rcpt("<mark@a.test>", client(INTERNET_IP)).reply == SMTP_RELAY_DENIED


def test_unrecognised_local_as_outgoing() -> None:
    """seed-6 §1.1: local senders' unknown local recipients go out when the option is on."""
    settings = RelaySettings(unrecognised_local_as_outgoing=True)
    assert rcpt("<nosuch@a.test>", client(LAN_IP, user="fred"), settings).disposition is (
        Disposition.OUTBOUND
    )
    assert rcpt("<nosuch@a.test>", client(INTERNET_IP), settings).reply == SMTP_RECIPIENT_UNKNOWN


def test_mapping_loop_refused() -> None:
    """A mapping chain deeper than 10 is refused with 554 5.4.6."""
    assert rcpt("<c0@a.test>", client(LAN_IP)).reply == MAPPING_LOOP


def test_check33_receive_internet_mail_off() -> None:
    """Check 33: a member that may not receive Internet mail is unknown to strangers."""
    blocked = frozenset({"bob"})
    assert rcpt("<bob@a.test>", client(INTERNET_IP), no_internet_receivers=blocked).reply == (
        SMTP_RECIPIENT_UNKNOWN
    )
    assert rcpt("<bob@a.test>", client(LAN_IP, user="fred"), no_internet_receivers=blocked).accepted


def test_check34_group_address_local_senders_only() -> None:
    """Check 34: office@a.test is refused from outside, reaches the group from a local user."""
    assert rcpt("<office@a.test>", client(INTERNET_IP)).reply == SMTP_RECIPIENT_UNKNOWN
    local = rcpt("<office@a.test>", client(INTERNET_IP, user="fred"))
    assert local.targets == (GroupTarget("office"),)


def test_sending_internet_mail_denied() -> None:
    """Allow Sending Internet Mail off: relay refused even with AUTH (manual L1717)."""
    who = client(LAN_IP, user="bob")
    decision = rcpt("<x@remote.test>", who, sender_may_send_internet=False)
    assert decision.reply == SENDING_INTERNET_DENIED
    assert rcpt("<fred@a.test>", who, sender_may_send_internet=False).accepted


def test_check33_max_outgoing_size_remote_only() -> None:
    """Check 33: 1 kB limit refuses a 5 kB message to a remote address, not a local one."""
    size = 5 * 1024
    refusal = outgoing_size_reply(size, 1, has_remote=True)
    assert refusal is not None
    assert refusal.code == 552
    assert outgoing_size_reply(size, 1, has_remote=False) is None
    assert outgoing_size_reply(size, 0, has_remote=True) is None
    assert outgoing_size_reply(1024, 1, has_remote=True) is None


def test_check33_reply_address_rewrite() -> None:
    """Check 33: Reply Address *@a.test gives bob@a.test; a literal is used as is."""
    assert rewrite_sender("*@a.test", "bob") == "bob@a.test"
    assert rewrite_sender("email@domain.test", "bob") == "email@domain.test"
    assert rewrite_sender("  ", "bob") is None


def test_group_overrides() -> None:
    """The primary group overrides per-user values; None inherits; disabled wins."""
    user = UserSettings(allow_send_internet=True, max_outgoing_kb=50, reply_address="me@x.test")
    group = GroupSettings("office", allow_send_internet=False, max_outgoing_kb=1)
    merged = effective_settings(user, group)
    assert not merged.allow_send_internet
    assert merged.allow_receive_internet
    assert merged.max_outgoing_kb == 1
    assert merged.reply_address == "me@x.test"
    assert not effective_settings(user, GroupSettings("off", enabled=False)).enabled
    assert effective_settings(user, GroupSettings("inherit")).max_outgoing_kb == 50
    assert effective_settings(user, None) is user


# ------------------------------------------------------------ open-relay battery

RELAY_TRICKS = [
    "<x@remote.test>",
    "<@a.test:x@remote.test>",
    "<@a.test,@b.test:x@remote.test>",
    "<x%remote.test@a.test>",
    "<remote.test!x@a.test>",
    '<"x@remote.test"@a.test>',
    '<"x%remote.test"@a.test>',
    "<x@[192.0.2.1]>",
    "<x@[IPv6:2001:db8::1]>",
    "<x@sub.a.test>",
    "<x@a.test.remote.test>",
    "<x@remote.test@a.test>",
    '<"x@remote.test">',
    "<x@remote.test.>",
    "<x@a.test%remote.test>",
    "<postmaster@remote.test>",
]


@pytest.mark.parametrize("path", RELAY_TRICKS)
@pytest.mark.parametrize(
    "options",
    [RelaySettings(), RelaySettings(reject_percent=False, reject_bang=False)],
    ids=["defaults", "percent-bang-allowed"],
)
def test_open_relay_battery(path: str, options: RelaySettings) -> None:
    """No unauthenticated Internet client gets any relay trick accepted for outbound."""
    stranger = client(INTERNET_IP, [AccessRule(True, RuleType.ANY)])
    try:
        decision = rcpt(
            path,
            stranger,
            RelaySettings(
                require_auth=True,
                reject_percent=options.reject_percent,
                reject_bang=options.reject_bang,
            ),
        )
    except AddressError:
        return  # syntax error at RCPT: refused
    assert not (decision.accepted and decision.disposition is Disposition.OUTBOUND)
    assert decision.reply is not None or all(isinstance(t, UserTarget) for t in decision.targets)


def test_source_route_to_local_delivers_locally() -> None:
    """A source route to a local mailbox is ignored: the mail stays here."""
    decision = rcpt("<@remote.test:fred@a.test>", client(INTERNET_IP))
    assert decision.accepted
    assert decision.targets == (UserTarget("fred"),)


def test_percent_and_bang_rejected_by_default() -> None:
    """seed-4 check 19: '%' and '!' recipients are refused while the options are on."""
    for path in ("<bill%microsoft.com@a.test>", "<a!b@a.test>"):
        assert rcpt(path, client(LAN_IP)).reply == BAD_RECIPIENT_SYNTAX
    assert check_recipient_syntax(parse_mailbox("fred@a.test"), RelaySettings()) is None


_PIECES = st.sampled_from(
    ["x", "fred", "x%remote.test", "remote.test!x", '"x@remote.test"', '"fred"', "Fred", "a.b"]
)
_DOMAINS = st.sampled_from(
    ["a.test", "A.TEST", "remote.test", "sub.a.test", "[192.0.2.1]", "[IPv6:::1]", "b.test"]
)
_ROUTES = st.sampled_from(["", "@a.test:", "@remote.test:", "@a.test,@remote.test:"])


@given(_ROUTES, _PIECES, _DOMAINS)
def test_no_stranger_ever_relays(route: str, local: str, domain: str) -> None:
    """Property: for any path built from relay tricks, a stranger never gets outbound."""
    stranger = client(INTERNET_IP, [AccessRule(True, RuleType.ANY)])
    path = f"<{route}{local}@{domain}>"
    try:
        decision = rcpt(path, stranger, RelaySettings(require_auth=True))
    except AddressError:
        return
    assert decision.disposition is not Disposition.OUTBOUND or not decision.accepted
    for target in decision.targets:
        assert isinstance(target, UserTarget | GroupTarget)
