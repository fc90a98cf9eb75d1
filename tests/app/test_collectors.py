"""Collector pieces without sockets: header sources (seed-3 §5.4), admin checks,
the ETRN transcript (seed-1 §11.2), and the schedule / collect-now service."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.support.stack import Stack
from vpop3d.app import collectoradmin
from vpop3d.app.accounts import AdminError
from vpop3d.app.collectorconfig import RunResult
from vpop3d.app.collectorroute import (
    RoutingOptions,
    drop_mbox_from,
    received_for,
    special_addresses,
    standard_addresses,
)
from vpop3d.app.collectorservice import CollectorService
from vpop3d.app.downloadrules import Condition, Facts, Rule, evaluate
from vpop3d.app.etrn import ETRNError, ETRNSession, parse_host_port
from vpop3d.core.message import scan_headers
from vpop3d.store import collectors as repo
from vpop3d.store import connectors as connectors_repo

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

HEADERS = scan_headers(
    b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Received: from c by d for <joe@a.test>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Received: from e by f for bob@a.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"X-RCPTTO: <bcc@a.test>\r\n"
    b"X-Recipient: account-5123112 kim@a.test delivered\r\n"
    b"X-Multi: <p@a.test>, <q@a.test>\r\n"
    b"To: Fred <fred@a.test>, group: g1@a.test, g2@b.test;\r\n"
    b"Cc: nobody, x@other.test\r\n"
    b"Resent-To: r@a.test\r\n"
    b"\r\n"
)


def test_standard_headers_to_cc_groups_and_at_filter() -> None:
    """To/Cc with groups and display names; bare words and Resent-* skipped by default."""
    opts = RoutingOptions()
    assert standard_addresses(HEADERS, opts) == [
        "fred@a.test",
        "g1@a.test",
        "g2@b.test",
        "x@other.test",
    ]
    with_resent = RoutingOptions(ignore_resent=False)
    assert "r@a.test" in standard_addresses(HEADERS, with_resent)


def test_received_for_clause_reversed_by_default() -> None:
    """Received 'for' clauses, read bottom-up by default (seed-3 §5.4)."""
    assert received_for(HEADERS, RoutingOptions()) == [["bob@a.test"], ["joe@a.test"]]
    assert received_for(HEADERS, RoutingOptions(read_received="forwards"))[0] == ["joe@a.test"]


def test_special_header_patterns() -> None:
    """Bare name, prefix * suffix, and /regex/g forms each extract addresses."""
    opts = RoutingOptions(
        special=(
            "X-RCPTTO",
            "X-Recipient: account-5123112 * delivered",
            "X-Multi: /<([^>@]+@[a-z0-9.-]+)>/ig",
        )
    )
    assert special_addresses(HEADERS, opts) == [
        ["bcc@a.test"],
        ["kim@a.test"],
        ["p@a.test", "q@a.test"],
    ]


def test_leading_mbox_from_line() -> None:
    """The bogus 'From sender date' line is recognised; a From: header is not."""
    assert drop_mbox_from(b"From someone@x.test Mon Jan  1 00:00:00 2024")
    assert not drop_mbox_from(b"From: someone@x.test")


def test_routing_options_from_json_defaults_and_values() -> None:
    """Stored options override defaults; junk falls back to the defaults."""
    opts = RoutingOptions.from_json('{"special": "X-A\\nX-B", "order": ["standard", "stop"]}')
    assert opts.special == ("X-A", "X-B")
    assert [slot.value for slot in opts.order] == ["standard", "stop"]
    assert RoutingOptions.from_json("not json") == RoutingOptions()


def test_admin_rejects_star_accepted_domain_and_missing_target(stack: Stack) -> None:
    """'*' as an Accepted Domain and single-user routing without a user are refused."""
    with pytest.raises(AdminError, match=r"\*"):
        stack.db.run_sync(
            collectoradmin.add_collector, "c", server="pop.isp.test", accepted_domains="a.test;*"
        )
    with pytest.raises(AdminError, match="target user"):
        stack.db.run_sync(collectoradmin.add_collector, "c", server="s", routing="user")
    made = stack.db.run_sync(
        collectoradmin.add_collector, "ok", server="s", routing="user", target_user="fred"
    )
    [summary] = stack.db.read_sync(collectoradmin.list_collectors)
    assert (summary.id, summary.name, summary.where) == (made, "ok", "s:110")


# ----------------------------------------------------------------- ETRN (RFC 1985)


def etrn_session(argument: str = "mydomain") -> tuple[ETRNSession, StringTransport]:
    session = ETRNSession(Clock(), argument, "client.example.test", timeout=60)
    transport = StringTransport()
    session.makeConnection(transport)
    return session, transport


def test_etrn_transcript_matches_manual() -> None:
    """Greeting, EHLO, 'ETRN mydomain' -> 250 OK queuing started, QUIT (seed-1 §11.2)."""
    session, transport = etrn_session()
    session.dataReceived(b"220 isp.test ESMTP\r\n")
    assert transport.value() == b"EHLO client.example.test\r\n"
    transport.clear()
    session.dataReceived(b"250-isp.test\r\n250 ETRN\r\n")
    assert transport.value() == b"ETRN mydomain\r\n"
    transport.clear()
    session.dataReceived(b"250 OK queuing started\r\n")
    assert transport.value() == b"QUIT\r\n"
    session.dataReceived(b"250 Goodbye\r\n")
    out: list[Any] = []
    session.done.addBoth(out.append)
    assert out == ["OK: ETRN accepted: 250 OK queuing started"]


def test_etrn_refusal_is_the_last_result() -> None:
    """A 5xx to ETRN becomes 'Error from remote server on "ETRN x" -> reply'."""
    session, _transport = etrn_session("example.com")
    session.dataReceived(b"220 isp.test ESMTP\r\n")
    session.dataReceived(b"250 isp.test\r\n")
    session.dataReceived(b"458 Unable to queue messages for node example.com\r\n")
    out: list[Any] = []
    session.done.addErrback(lambda f: out.append(f.value))
    [error] = out
    assert isinstance(error, ETRNError)
    assert str(error) == (
        'Error from remote server on "ETRN example.com" -> '
        "458 Unable to queue messages for node example.com"
    )


def test_etrn_server_parsing() -> None:
    """'host[:port]' with port 25 by default."""
    assert parse_host_port("smtp.isp.test") == ("smtp.isp.test", 25)
    assert parse_host_port("smtp.isp.test:2525") == ("smtp.isp.test", 2525)


# ----------------------------------------------------------------- schedule service


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def run(self, collector_id: int) -> Deferred[RunResult]:
        self.calls.append(("run", collector_id))
        return succeed(RunResult(True, "ok"))

    async def run_for_connections(self, ids: set[int]) -> list[RunResult]:
        self.calls.append(("connections", sorted(ids)))
        return [RunResult(True, "ok")]


@ensure_deferred
async def test_schedule_runs_due_connections_only_when_enabled(stack: Stack) -> None:
    """The minute's due Connections run their collectors; nothing while the schedule is off."""
    connection = stack.db.run_sync(connectors_repo.add_connection, "Internet")
    stack.db.run_sync(connectors_repo.add_schedule_item, name="every 10", interval_min=10)
    runner = FakeRunner()
    clock = Clock()
    service = CollectorService(
        runner,  # type: ignore[arg-type]
        stack.db,
        stack.settings,
        clock,
        local_time=lambda _now: time.struct_time((2026, 1, 5, 10, 20, 0, 0, 5, 0)),
    )
    assert await service.tick() == []
    assert runner.calls == []
    stack.put_setting("schedule.enabled", True)
    await service.tick()
    assert runner.calls == [("connections", [connection])]


@ensure_deferred
async def test_collect_now_request_runs_once(stack: Stack) -> None:
    """A 'collector run' request (setting) runs the collector once per request."""
    collector = stack.db.run_sync(repo.add, "isp", server="s")
    runner = FakeRunner()
    service = CollectorService(runner, stack.db, stack.settings, Clock())  # type: ignore[arg-type]
    stack.db.run_sync(collectoradmin.request_run, "isp", 100.0)
    stack.settings.load_sync()
    await service.poll_requests()
    await service.poll_requests()
    assert runner.calls == [("run", collector)]
    stack.db.run_sync(collectoradmin.request_run, "isp", 200.0)
    stack.settings.load_sync()
    await service.poll_requests()
    assert runner.calls == [("run", collector), ("run", collector)]


# ----------------------------------------------------------------- Download Rules (seed-3 §4)


def facts(**overrides: Any) -> Facts:
    values: dict[str, Any] = {
        "headers": scan_headers(b"From: Bob Wright <bob@company.test>\r\nSubject: Hello\r\n\r\n"),
        "size": 5000,
        "collector_name": "isp",
        "collector_id": 7,
        "hour_minute": 9 * 60 + 30,
        "weekday_sun1": 2,
    }
    values.update(overrides)
    return Facts(**values)


def rule(action: str, *conds: Condition, **kw: Any) -> Rule:
    return Rule(name=kw.pop("name", action), action=action, conditions=conds, **kw)


def test_first_matching_rule_wins_and_default_is_download() -> None:
    """Rules run top to bottom; the first match decides; no match means Download."""
    rules = [
        rule("delete-silently", Condition("Subject", "contains", "viagra")),
        rule("ignore", Condition("Size", "greater than", "4000")),
        rule("delete-silently", Condition("Always", data="1")),
    ]
    verdict = evaluate(rules, facts())
    assert (verdict.action, verdict.rule, verdict.downloads) == ("ignore", "ignore", False)
    assert evaluate([], facts()).action == "download"


def test_raw_header_value_equals_versus_contains() -> None:
    """'From equals bob@…' does not match a display-name From; 'contains' does (§4.4)."""
    equals = rule("delete-silently", Condition("From", "equals", "bob@company.test"))
    contains = rule("delete-silently", Condition("From,Sender", "contains", "BOB@company.test"))
    assert evaluate([equals], facts()).action == "download"
    assert evaluate([contains], facts()).action == "delete-silently"


def test_if_else_endif_and_set_header_continue() -> None:
    """If/Else blocks pick one branch; Set Header and Continue keeps going."""
    rules = [
        rule("set-header-continue", Condition("Always", data="1"), header_line="X-Seen: yes"),
        rule("if", Condition("Collector", data="7")),
        rule("redirect", Condition("TimeNow", data="9-17"), targets="boss"),
        rule("else"),
        rule("delete-silently", Condition("Always", data="1")),
        rule("endif"),
    ]
    verdict = evaluate(rules, facts())
    assert (verdict.action, verdict.targets, verdict.header_lines) == (
        "redirect",
        "boss",
        ["X-Seen: yes"],
    )
    evening = evaluate(rules, facts(collector_id=8))
    assert evening.action == "delete-silently"


def test_time_and_day_pseudo_headers_and_not() -> None:
    """TimeNow '9-17' runs to 17:59; DayNow uses Sunday=1; Not inverts."""
    late = facts(hour_minute=17 * 60 + 59)
    assert evaluate([rule("ignore", Condition("TimeNow", data="9-17"))], late).action == "ignore"
    monday = rule("ignore", Condition("DayNow", data="2"))
    assert evaluate([monday], facts()).action == "ignore"
    not_monday = rule("ignore", Condition("DayNow", data="2", negate=True))
    assert evaluate([not_monday], facts()).action == "download"
    regex = rule("ignore", Condition("Subject", "regex", "/^hel+o$/i"))
    assert evaluate([regex], facts()).action == "ignore"


def test_duplicate_uidls_at_the_server_get_distinct_keys() -> None:
    """A server repeating a UIDL must not make two messages share one inventory row."""
    from vpop3d.app.collectors import _keys

    assert _keys([(1, "a"), (2, "b"), (3, "a"), (4, "a")]) == [
        (1, "a"),
        (2, "b"),
        (3, "a#2"),
        (4, "a#3"),
    ]


def test_setup_wizard_collector_is_imported_once(stack: Stack) -> None:
    """The wizard's saved collector becomes the "Setup Wizard" row; unchanged specs are
    not imported again, a new wizard run updates the row."""
    spec = {
        "kind": "pop3",
        "connection_id": 1,
        "enabled": True,
        "server": "pop.isp.test:1110",
        "auth": "apop",
        "username": "acct",
        "password": "pw",
        "routing": "parse",
        "accepted_domains": ["a.test", "b.test"],
        "target_user": "",
        "target_address": "",
        "target_server": "",
    }
    stack.put_setting(collectoradmin.WIZARD_KEY, [spec])
    made = stack.db.run_sync(collectoradmin.import_wizard)
    assert made is not None
    assert stack.db.run_sync(collectoradmin.import_wizard) is None
    row = stack.db.read_sync(repo.by_id, made)
    assert row is not None
    assert (row["server"], row["port"], row["auth_method"], row["routing"]) == (
        "pop.isp.test",
        1110,
        "apop",
        "headers",
    )
    assert row["accepted_domains"] == "a.test;b.test"
    stack.put_setting(
        collectoradmin.WIZARD_KEY, [{**spec, "routing": "single", "target_user": "bob"}]
    )
    assert stack.db.run_sync(collectoradmin.import_wizard) == made
    updated = stack.db.read_sync(repo.by_id, made)
    assert updated is not None
    assert (updated["routing"], updated["target_user"]) == ("user", "bob")
