"""Mapping resolution (seed-1 §17, seed-2 §24; seed-1 checks 19-28, 34)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.address import Mailbox, parse_mailbox
from vpop3d.core.mapping import (
    Directory,
    DiscardTarget,
    GroupTarget,
    LanForwardTarget,
    LanRule,
    ListTarget,
    LocalDomains,
    MappingKind,
    MappingRow,
    Outcome,
    RemoteTarget,
    Resolution,
    RoutingContext,
    Source,
    Step,
    TargetError,
    UserTarget,
    parse_lan_forward,
    resolve,
    resolve_from,
)

DOMAINS = LocalDomains.parse("a.test;b.test")
NAMES = Directory.of(
    users=["fred", "kate", "bob", "joe", "fred.a", "fred.b"],
    lists=["team"],
    groups=["office"],
)


def ctx(*rows: tuple[str, str], implied: bool = True, **kw: object) -> RoutingContext:
    mappings = [MappingRow(p, t, order=i) for i, (p, t) in enumerate(rows)]
    return RoutingContext(DOMAINS, NAMES, mappings, implied=implied, **kw)  # type: ignore[arg-type]


def res(address: str, context: RoutingContext) -> Resolution:
    return resolve(parse_mailbox(address, smtputf8=True), context)


def users(resolution: Resolution) -> set[str]:
    return {t.name for t in resolution.targets if isinstance(t, UserTarget)}


def test_check14_unknown_local_recipient() -> None:
    """Check 14: nosuch@a.test is unrecognised, fred@a.test is fred."""
    assert res("nosuch@a.test", ctx()).outcome is Outcome.UNRECOGNISED
    fred = res("fred@a.test", ctx())
    assert fred.outcome is Outcome.DELIVER
    assert fred.targets == (UserTarget("fred"),)
    assert fred.step is Step.IMPLIED


def test_check19_default_address_in_every_local_domain() -> None:
    """Check 19: fred@a.test and fred@b.test both reach fred; case does not matter."""
    for address in ("fred@a.test", "fred@b.test", "FRED@B.TEST"):
        assert res(address, ctx()).targets == (UserTarget("fred"),)


def test_check20_redirect_removes_original() -> None:
    """Check 20: fred → kate delivers to kate and not to fred."""
    assert users(res("fred@a.test", ctx(("fred", "kate")))) == {"kate"}


def test_check21_copy() -> None:
    """Check 21: fred → kate plus fred → fred gives one copy each."""
    resolution = res("fred@a.test", ctx(("fred", "kate"), ("fred", "fred")))
    assert resolution.targets == (UserTarget("kate"), UserTarget("fred"))


def test_duplicate_targets_collapse() -> None:
    """Two mappings to the same user produce one target."""
    resolution = res("fred@a.test", ctx(("fred", "kate"), ("fred@a.test", "kate")))
    assert resolution.targets == (UserTarget("kate"),)


def test_check22_alias() -> None:
    """Check 22: sales → fred makes sales@a.test deliverable to fred."""
    resolution = res("sales@a.test", ctx(("sales", "fred")))
    assert resolution.outcome is Outcome.DELIVER
    assert users(resolution) == {"fred"}


def test_check23_per_domain_split() -> None:
    """Check 23: fred@a.test → fred.a and fred@b.test → fred.b stay apart."""
    context = ctx(("fred@a.test", "fred.a"), ("fred@b.test", "fred.b"))
    assert users(res("fred@a.test", context)) == {"fred.a"}
    assert users(res("fred@b.test", context)) == {"fred.b"}


def test_check24_foreign_address_mapping_is_local() -> None:
    """Check 24: someone@elsewhere.test → fred is local and goes to fred."""
    context = ctx(("someone@elsewhere.test", "fred"))
    resolution = res("someone@elsewhere.test", context)
    assert resolution.outcome is Outcome.DELIVER
    assert resolution.is_local
    assert users(resolution) == {"fred"}
    assert res("other@elsewhere.test", context).outcome is Outcome.REMOTE


@pytest.mark.parametrize(
    ("pattern", "address", "matches"),
    [
        ("sup*@a.test", "support@a.test", True),
        ("sup*@a.test", "support@b.test", False),
        ("s?les@a.test", "sales@a.test", True),
        ("s?les@a.test", "saales@a.test", False),
        ("s?les", "sales@b.test", True),
        ("*@a.test", "fred@a.test", True),
        ("fred@*", "fred@anywhere.test", True),
        ("*@example.test", '"[x]"@example.test', True),
        ("[x]@example.test", "x@example.test", False),
    ],
)
def test_check25_wildcards(pattern: str, address: str, matches: bool) -> None:
    """Check 25: * and ? in mapping patterns, whole-value and caseless."""
    resolution = res(address, ctx((pattern, "kate")))
    assert (UserTarget("kate") in resolution.targets) is matches


def test_wildcard_domain_mapping_captures_users() -> None:
    """*@a.test → bob captures mail for existing users too (manual L4661)."""
    context = ctx(("*@a.test", "bob"))
    assert users(res("fred@a.test", context)) == {"bob"}
    assert users(res("fred@b.test", context)) == {"fred"}


def test_check26_catch_all_only_when_nothing_else() -> None:
    """Check 26: ~@a.test → kate takes unknown addresses, fred still goes to fred."""
    context = ctx(("~@a.test", "kate"))
    unknown = res("nosuch@a.test", context)
    assert unknown.step is Step.CATCH_ALL
    assert users(unknown) == {"kate"}
    assert users(res("fred@a.test", context)) == {"fred"}
    assert res("nosuch@b.test", context).outcome is Outcome.UNRECOGNISED


def test_catch_all_after_explicit_mapping() -> None:
    """An explicit mapping wins over ~@ for the same domain."""
    context = ctx(("~@a.test", "kate"), ("sales", "bob"))
    assert users(res("sales@a.test", context)) == {"bob"}


def test_check27_remote_marker() -> None:
    """Check 27: kate → *REMOTE makes kate@a.test a remote (outbound) address."""
    resolution = res("kate@a.test", ctx(("kate", "*REMOTE")))
    assert resolution.outcome is Outcome.REMOTE
    assert not resolution.is_local
    assert resolution.targets == (RemoteTarget(Mailbox("kate", "a.test"), hosted_elsewhere=True),)


def test_check28_implied_switch_off() -> None:
    """Check 28: with the implied mapping off, fred@a.test is unrecognised."""
    context = ctx(implied=False)
    assert res("fred@a.test", context).outcome is Outcome.UNRECOGNISED
    assert users(res("fred@a.test", ctx(("fred", "fred"), implied=False))) == {"fred"}


def test_implied_off_example_from_manual() -> None:
    """bob@example.com→bob1, bob@example.net→bob2: bob1@example.net only with implied on."""
    domains = LocalDomains.parse("example.com;example.net")
    names = Directory.of(users=["bob1", "bob2"])
    rows = [MappingRow("bob@example.com", "bob1"), MappingRow("bob@example.net", "bob2")]
    on = RoutingContext(domains, names, rows)
    off = RoutingContext(domains, names, rows, implied=False)
    address = parse_mailbox("bob1@example.net")
    assert resolve(address, on).targets == (UserTarget("bob1"),)
    assert resolve(address, off).outcome is Outcome.UNRECOGNISED


def test_lists_and_groups_by_implied_name() -> None:
    """team@ and office@ resolve to the list and the group (check 34 routing part)."""
    assert res("team@a.test", ctx()).targets == (ListTarget("team"),)
    assert res("office@b.test", ctx()).targets == (GroupTarget("office"),)


def test_remote_address_not_local() -> None:
    """An unmapped address at a non-local domain is remote (relay)."""
    resolution = res("x@remote.test", ctx())
    assert resolution.outcome is Outcome.REMOTE
    assert resolution.targets == ()


def test_mapping_to_foreign_address_is_remote_target() -> None:
    """A mapping target outside our domains becomes an outbound copy."""
    resolution = res("fred@a.test", ctx(("fred", "fred@isp.test"), ("fred", "fred")))
    assert resolution.outcome is Outcome.DELIVER
    assert resolution.targets == (
        RemoteTarget(Mailbox("fred", "isp.test")),
        UserTarget("fred"),
    )


def test_recursive_targets() -> None:
    """A target that is itself mapped resolves through the chain."""
    context = ctx(("sales", "orders@a.test"), ("orders", "kate"), ("info", "sales"))
    assert users(res("sales@a.test", context)) == {"kate"}
    assert users(res("info@b.test", context)) == {"kate"}


def test_mapping_cycle_is_pruned() -> None:
    """a → b → a stops at the repeat; with no other target the address is unknown."""
    context = ctx(("x@a.test", "y@a.test"), ("y@a.test", "x@a.test"))
    resolution = res("x@a.test", context)
    assert resolution.outcome is Outcome.UNRECOGNISED
    assert any("loop" in note for note in resolution.notes)


def test_cycle_with_other_target_still_delivers() -> None:
    """A cycle branch is dropped, other targets stay."""
    context = ctx(("x@a.test", "y@a.test"), ("y@a.test", "x@a.test"), ("y@a.test", "bob"))
    assert users(res("x@a.test", context)) == {"bob"}


def test_depth_limit() -> None:
    """A chain deeper than 10 mapped addresses is a loop."""
    rows = [(f"m{i}@a.test", f"m{i + 1}@a.test") for i in range(12)]
    rows.append(("m12@a.test", "fred"))
    assert res("m0@a.test", ctx(*rows)).outcome is Outcome.LOOP
    assert users(res("m5@a.test", ctx(*rows))) == {"fred"}


def test_mapping_to_missing_user_is_unrecognised() -> None:
    """A mapping whose only target does not exist leaves the address unknown."""
    resolution = res("sales@a.test", ctx(("sales", "ghost")))
    assert resolution.outcome is Outcome.UNRECOGNISED
    assert resolution.notes


def test_kind_filters_by_source() -> None:
    """SMTP-only and POP3-only mappings apply only to their arrival path."""
    rows = [
        MappingRow("sales", "kate", MappingKind.SMTP),
        MappingRow("sales", "bob", MappingKind.POP3, collector_id=7),
    ]
    smtp = RoutingContext(DOMAINS, NAMES, rows)
    pop_7 = RoutingContext(DOMAINS, NAMES, rows, source=Source.POP3, collector_id=7)
    pop_8 = RoutingContext(DOMAINS, NAMES, rows, source=Source.POP3, collector_id=8)
    address = parse_mailbox("sales@a.test")
    assert resolve(address, smtp).targets == (UserTarget("kate"),)
    assert resolve(address, pop_7).targets == (UserTarget("bob"),)
    assert resolve(address, pop_8).outcome is Outcome.UNRECOGNISED


def test_from_mapping_for_downloads() -> None:
    """Check 29 (routing part): FROM customer@client.test → kate, POP3 only."""
    rows = [MappingRow("customer@client.test", "kate", MappingKind.FROM)]
    pop = RoutingContext(DOMAINS, NAMES, rows, source=Source.POP3)
    smtp = RoutingContext(DOMAINS, NAMES, rows)
    sender = parse_mailbox("Customer@Client.test")
    assert resolve_from(sender, pop) == (UserTarget("kate"),)
    assert resolve_from(sender, smtp) == ()
    assert resolve_from(parse_mailbox("other@client.test"), pop) == ()
    # FROM rows never route recipients.
    assert resolve(parse_mailbox("customer@client.test"), pop).outcome is Outcome.REMOTE


def test_lan_forward_target_in_mapping() -> None:
    """An SMTP: target is a typed LAN forward."""
    resolution = res("bob@a.test", ctx(("bob", "SMTP:bob@example.com@192.168.1.1")))
    assert resolution.targets == (
        LanForwardTarget(Mailbox("bob", "example.com"), "192.168.1.1", 25),
    )


@pytest.mark.parametrize(
    ("text", "recipient", "server", "port", "user", "password"),
    [
        ("SMTP:bob@example.com@192.168.1.1", "bob@example.com", "192.168.1.1", 25, None, None),
        (
            "SMTP:bob@example.com@fred:mypass@192.168.1.1:587",
            "bob@example.com",
            "192.168.1.1",
            587,
            "fred",
            "mypass",
        ),
        ("smtp:bob@example.com@127.0.0.1:2525", "bob@example.com", "127.0.0.1", 2525, None, None),
        ("SMTP:x@y.test@[2001:db8::1]:26", "x@y.test", "2001:db8::1", 26, None, None),
        ("SMTP:x@y.test@Mail.LAN.test", "x@y.test", "mail.lan.test", 25, None, None),
        ("SMTP:x@y.test@u:p:q@h.test", "x@y.test", "h.test", 25, "u", "p:q"),
    ],
)
def test_parse_lan_forward(
    text: str, recipient: str, server: str, port: int, user: str | None, password: str | None
) -> None:
    """The inline LAN-forward syntax of seed-1 §14."""
    target = parse_lan_forward(text)
    assert str(target.recipient) == recipient
    assert (target.server, target.port, target.username, target.password) == (
        server,
        port,
        user,
        password,
    )


@pytest.mark.parametrize(
    "text",
    [
        "bob@example.com@h.test",
        "SMTP:",
        "SMTP:bob@example.com",
        "SMTP:@h.test",
        "SMTP:bob@example.com@h.test:0",
        "SMTP:bob@example.com@h.test:99999",
        "SMTP:bob@example.com@h.test:",
        "SMTP:bob@example.com@[zz]:25",
        "SMTP:bob@example.com@bad_host",
    ],
)
def test_parse_lan_forward_rejects(text: str) -> None:
    """Malformed LAN-forward targets raise TargetError."""
    with pytest.raises(TargetError):
        parse_lan_forward(text)


def test_lan_forward_password_not_in_repr() -> None:
    """The password never shows up in logs via repr()."""
    target = parse_lan_forward("SMTP:bob@example.com@fred:s3cret@192.168.1.1")
    assert "s3cret" not in repr(target)


def test_local_domains_setting_forms() -> None:
    """Local Domains accepts domains, *@domain, wildcards and full addresses."""
    domains = LocalDomains.parse("a.test; *@pscs.test,*.sub.test only@x.test")
    assert domains.contains(Mailbox("u", "a.test"))
    assert domains.contains(Mailbox("u", "pscs.test"))
    assert domains.contains(Mailbox("u", "deep.sub.test"))
    assert domains.contains(Mailbox("only", "x.test"))
    assert not domains.contains(Mailbox("other", "x.test"))
    assert not domains.contains(Mailbox("u", "[192.0.2.1]"))
    assert domains.first == "a.test"


def test_address_literal_local_only_when_listed() -> None:
    """x@[1.2.3.4] is local only if the literal is in Local Domains."""
    assert res("fred@[192.0.2.1]", ctx()).outcome is Outcome.REMOTE
    listed = RoutingContext(LocalDomains.of(["a.test", "[192.0.2.1]"]), NAMES)
    assert resolve(Mailbox("fred", "[192.0.2.1]"), listed).targets == (UserTarget("fred"),)


def test_quoted_local_with_at_is_a_name() -> None:
    """ "x@remote.test"@a.test is just an unknown local name, never a route."""
    resolution = res('"x@remote.test"@a.test', ctx())
    assert resolution.outcome is Outcome.UNRECOGNISED


def lan_ctx(*rules: LanRule, bare: bool = False, **kw: object) -> RoutingContext:
    return RoutingContext(
        DOMAINS,
        NAMES,
        [MappingRow("~@b.test", "kate")],
        lan_rules=rules,
        lan_bare_local_parts=bare,
        **kw,  # type: ignore[arg-type]
    )


def test_lan_rules_first_match_wins() -> None:
    """features-b §19 check 5: specific then wildcard; swapping changes the route."""
    specific = LanRule("specific@x.test", "10.0.0.1")
    wildcard = LanRule("*@x.test", "10.0.0.2", 587, "u", "p")
    first = resolve(parse_mailbox("specific@x.test"), lan_ctx(specific, wildcard))
    assert first.step is Step.LAN_RULE
    assert first.outcome is Outcome.DELIVER
    assert first.targets == (LanForwardTarget(Mailbox("specific", "x.test"), "10.0.0.1"),)
    swapped = resolve(parse_mailbox("specific@x.test"), lan_ctx(wildcard, specific))
    assert swapped.targets == (
        LanForwardTarget(Mailbox("specific", "x.test"), "10.0.0.2", 587, "u", "p"),
    )
    other = resolve(parse_mailbox("any@x.test"), lan_ctx(specific, wildcard))
    assert other.targets[0] == LanForwardTarget(Mailbox("any", "x.test"), "10.0.0.2", 587, "u", "p")


def test_lan_catch_all_after_users_and_rewrite() -> None:
    """features-b §19 check 6: ~@ rule only for unknown addresses; *@new rewrite keeps local."""
    context = lan_ctx(
        LanRule("~@a.test", "10.0.0.3"), LanRule("*@old.test", "10.0.0.4", rewrite="*@new.test")
    )
    assert resolve(parse_mailbox("fred@a.test"), context).targets == (UserTarget("fred"),)
    zed = resolve(parse_mailbox("zed@a.test"), context)
    assert zed.targets == (LanForwardTarget(Mailbox("zed", "a.test"), "10.0.0.3"),)
    joe = resolve(parse_mailbox("joe@old.test"), context)
    assert joe.targets == (LanForwardTarget(Mailbox("joe", "new.test"), "10.0.0.4"),)


def test_lan_rules_after_mappings_and_before_mapping_catch_all() -> None:
    """Mappings win over LAN rules; ~@ mappings come before ~@ LAN rules."""
    context = lan_ctx(LanRule("*@b.test", "10.0.0.5"), LanRule("~@b.test", "10.0.0.6"))
    assert resolve(parse_mailbox("fred@b.test"), context).targets == (UserTarget("fred"),)
    assert resolve(parse_mailbox("zed@b.test"), context).step is Step.LAN_RULE
    only_catch = lan_ctx(LanRule("~@b.test", "10.0.0.6"))
    assert resolve(parse_mailbox("zed@b.test"), only_catch).targets == (UserTarget("kate"),)


def test_lan_rule_conditions_and_bare_addresses() -> None:
    """Cond limits a rule to SMTP, POP3 or one collector; bare local parts need the option."""
    smtp_only = LanRule("*@x.test", "10.0.0.7", source=Source.SMTP)
    pop_7 = LanRule("*@y.test", "10.0.0.8", source=Source.POP3, collector_id=7)
    address_x = parse_mailbox("u@x.test")
    assert resolve(address_x, lan_ctx(smtp_only)).step is Step.LAN_RULE
    assert resolve(address_x, lan_ctx(smtp_only, source=Source.POP3)).outcome is Outcome.REMOTE
    address_y = parse_mailbox("u@y.test")
    assert resolve(address_y, lan_ctx(pop_7, source=Source.POP3, collector_id=7)).targets
    assert not resolve(address_y, lan_ctx(pop_7, source=Source.POP3, collector_id=8)).targets
    bare = LanRule("helpdesk", "10.0.0.9")
    address = parse_mailbox("helpdesk@a.test")
    assert resolve(address, lan_ctx(bare)).outcome is Outcome.UNRECOGNISED
    assert resolve(address, lan_ctx(bare, bare=True)).step is Step.LAN_RULE


def test_no_one_target_discards() -> None:
    """features-a §3a check 8: spam → No-one accepts and discards; a user no-one wins."""
    resolution = res("spam@a.test", ctx(("spam", "No-one")))
    assert resolution.outcome is Outcome.DELIVER
    assert resolution.targets == (DiscardTarget(),)
    named = RoutingContext(DOMAINS, Directory.of(users=["no-one"]), [MappingRow("spam", "no-one")])
    assert resolve(parse_mailbox("spam@a.test"), named).targets == (UserTarget("no-one"),)


_PATTERNS = st.sampled_from(
    ["fred", "f*", "?red", "*@a.test", "~@a.test", "x@b.test", "*", "~@*", "@", "a@@b", "~"]
)
_TARGETS = st.sampled_from(
    [
        "kate",
        "x@b.test",
        "fred@a.test",
        "*REMOTE",
        "SMTP:bob@example.com@10.0.0.1:25",
        "SMTP:bad",
        "no-one",
        "ghost",
        "team",
        "office",
        "y@remote.test",
        "",
        "@",
        "a b@c",
    ]
)


@given(
    st.lists(st.tuples(_PATTERNS, _TARGETS), max_size=8),
    st.sampled_from(["fred@a.test", "x@b.test", "zed@a.test", "y@remote.test", "kate@b.test"]),
    st.booleans(),
)
def test_resolve_never_raises(rows: list[tuple[str, str]], address: str, implied: bool) -> None:
    """Property: any mapping table resolves without error and without duplicate targets."""
    resolution = res(address, ctx(*rows, implied=implied))
    assert len(set(resolution.targets)) == len(resolution.targets)
    if resolution.outcome is Outcome.UNRECOGNISED:
        assert resolution.targets == ()


def test_idna_local_domain_matches_either_form() -> None:
    """A U-label local domain matches recipients written as U-label or A-label."""
    domains = LocalDomains.of(["Bücher.test"])
    assert domains.contains(parse_mailbox("fred@BÜCHER.test", smtputf8=True))
    assert domains.contains(parse_mailbox("fred@xn--bcher-kva.test"))
    context = RoutingContext(domains, NAMES, [MappingRow("info@bücher.test", "kate")])
    assert resolve(parse_mailbox("info@xn--bcher-kva.test"), context).targets == (
        UserTarget("kate"),
    )
