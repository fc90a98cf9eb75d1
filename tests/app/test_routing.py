"""Routing over the store: snapshot loading, caching and resolution."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from tests.app.delivery_support import World, make_world, result
from tests.support.stack import Stack
from vpop3d.app import accounts
from vpop3d.app.routing import Router
from vpop3d.core.address import parse_mailbox
from vpop3d.core.mapping import GroupTarget, MappingKind, Outcome, UserTarget
from vpop3d.store import groups, mappings, users
from vpop3d.store.tables import mappings as mapping_table


@pytest.fixture
def world(stack: Stack) -> World:
    stack.add_domain("a.test")
    for name in ("fred", "kate"):
        stack.add_user(name)
    return make_world(stack)


def resolve(world: World, address: str) -> tuple[Outcome, tuple[object, ...]]:
    resolution = result(Deferred.fromCoroutine(world.router.resolve(parse_mailbox(address))))
    return resolution.outcome, resolution.targets


def test_snapshot_reads_domains_users_and_mappings(world: World) -> None:
    """The snapshot holds every local domain, user and enabled mapping row."""
    world.db.run_sync(accounts.add_mapping, "sales", ["fred", "kate"])
    snapshot = result(Deferred.fromCoroutine(world.router.snapshot()))
    assert snapshot.domains.contains(parse_mailbox("x@a.test"))
    assert snapshot.domains.contains(parse_mailbox("x@example.test"))
    assert snapshot.default_domain == "example.test"
    assert snapshot.user("FRED") is not None
    assert [(r.pattern, r.target, r.kind) for r in snapshot.mappings] == [
        ("sales", "fred", MappingKind.ALWAYS),
        ("sales", "kate", MappingKind.ALWAYS),
    ]


def test_resolve_uses_store(world: World) -> None:
    """Users at every local domain resolve; unknown local names do not."""
    assert resolve(world, "fred@a.test") == (Outcome.DELIVER, (UserTarget("fred"),))
    assert resolve(world, "fred@example.test") == (Outcome.DELIVER, (UserTarget("fred"),))
    assert resolve(world, "nobody@a.test")[0] is Outcome.UNRECOGNISED
    assert resolve(world, "x@remote.test")[0] is Outcome.REMOTE


def test_from_mappings_load_as_from_kind(world: World) -> None:
    """direction=from rows become FROM mappings used only for downloads."""
    world.db.run_sync(accounts.add_mapping, "customer@client.test", ["kate"], direction="from")
    targets = result(
        Deferred.fromCoroutine(world.router.resolve_from(parse_mailbox("customer@client.test")))
    )
    assert targets == (UserTarget("kate"),)
    assert resolve(world, "customer@client.test")[0] is Outcome.REMOTE


def test_disabled_mapping_ignored(world: World) -> None:
    """A disabled mapping row does not route."""

    def add_disabled(conn: Connection) -> None:
        row = mappings.add(conn, "fred", ["kate"])
        conn.execute(
            mapping_table.update().where(mapping_table.c.id == row.id).values(enabled=False)
        )

    world.db.run_sync(add_disabled)
    assert resolve(world, "fred@a.test") == (Outcome.DELIVER, (UserTarget("fred"),))


def test_cache_refreshes_after_ttl(stack: Stack) -> None:
    """A cached snapshot is reused within its TTL and reloaded after it, or on invalidate()."""
    stack.add_domain("a.test")
    world = make_world(stack)
    router = Router(world.db, world.clock, ttl=5.0)

    def outcome() -> Outcome:
        found = result(Deferred.fromCoroutine(router.resolve(parse_mailbox("zed@a.test"))))
        return found.outcome

    assert outcome() is Outcome.UNRECOGNISED
    stack.add_user("zed")
    assert outcome() is Outcome.UNRECOGNISED
    world.clock.advance(6)
    assert outcome() is Outcome.DELIVER
    world.db.run_sync(lambda c: users.remove(c, users.by_name(c, "zed").id))  # type: ignore[union-attr]
    router.invalidate()
    assert outcome() is Outcome.UNRECOGNISED


def test_group_members_and_overrides(world: World) -> None:
    """Primary and secondary members are group members; the primary group overrides."""

    def setup(conn: Connection) -> None:
        office = groups.add(conn, "office", allow_receive_internet=False)
        fred = users.by_name(conn, "fred")
        kate = users.by_name(conn, "kate")
        assert fred is not None
        assert kate is not None
        users.update_fields(conn, fred.id, primary_group_id=office.id)
        users.set_secondary_groups(conn, kate.id, [office.id])

    world.db.run_sync(setup)
    world.router.invalidate()
    snapshot = result(Deferred.fromCoroutine(world.router.snapshot()))
    assert snapshot.group_members["office"] == ("fred", "kate")
    assert snapshot.no_internet_receivers() == frozenset({"fred"})
    assert resolve(world, "office@a.test") == (Outcome.DELIVER, (GroupTarget("office"),))


def test_is_local_address(world: World) -> None:
    """Local Domains or a mapping make an address local; junk is not local."""
    world.db.run_sync(accounts.add_mapping, "someone@elsewhere.test", ["fred"])
    world.router.invalidate()

    def local(address: str) -> bool:
        return result(Deferred.fromCoroutine(world.router.is_local_address(address)))

    assert local("fred@a.test")
    assert local("someone@elsewhere.test")
    assert not local("x@remote.test")
    assert not local("not an address")


def test_lan_rules_from_json() -> None:
    """Stored LAN rules parse server:port, credentials, rewrite and Cond; junk is reported."""
    from vpop3d.app.routing import lan_rules_from_json
    from vpop3d.core.mapping import LanRule, Source

    rules, problems = lan_rules_from_json(
        [
            {"address": "*@x.test", "server": "10.0.0.1:587", "user": "paul", "password": "pw"},
            {"address": "~@a.test", "server": "mail.lan.test", "cond": "SMTP"},
            {
                "address": "*@old.test",
                "server": "[2001:db8::1]",
                "rewrite": "*@new.test",
                "cond": 7,
            },
            {"address": "y@x.test", "server": "bad host"},
            {"server": "10.0.0.1"},
            {"address": "z@x.test", "server": "10.0.0.1", "cond": "sometimes"},
            "junk",
        ]
    )
    assert rules == (
        LanRule("*@x.test", "10.0.0.1", 587, "paul", "pw"),
        LanRule("~@a.test", "mail.lan.test", source=Source.SMTP),
        LanRule(
            "*@old.test", "2001:db8::1", rewrite="*@new.test", source=Source.POP3, collector_id=7
        ),
    )
    assert len(problems) == 4
    assert lan_rules_from_json(None) == ((), [])


def test_mapping_kind_from_row() -> None:
    """direction=from is FROM; a future ``kind`` attribute narrows to SMTP or POP3."""
    from dataclasses import dataclass

    from vpop3d.app.routing import _mapping_kind

    @dataclass
    class Row:
        direction: str
        kind: str = "always"

    assert _mapping_kind(Row("from")) is MappingKind.FROM  # type: ignore[arg-type]
    assert _mapping_kind(Row("to")) is MappingKind.ALWAYS  # type: ignore[arg-type]
    assert _mapping_kind(Row("to", "SMTP")) is MappingKind.SMTP  # type: ignore[arg-type]
    assert _mapping_kind(Row("to", "pop3")) is MappingKind.POP3  # type: ignore[arg-type]
    assert _mapping_kind(Row("to", "Normal")) is MappingKind.ALWAYS  # type: ignore[arg-type]
    assert _mapping_kind(Row("to", "from")) is MappingKind.ALWAYS  # type: ignore[arg-type]
    assert _mapping_kind(Row("to", "junk")) is MappingKind.ALWAYS  # type: ignore[arg-type]
