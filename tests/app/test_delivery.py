"""SMTP delivery over a real store (seed-1 checks 14-17, 19-28, 33-34; issue 4 items 3-5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection, func, select
from twisted.internet.defer import Deferred

from tests.app.delivery_support import (
    INTERNET_IP,
    LAN_IP,
    World,
    envelope,
    make_world,
    result,
)
from tests.support.stack import Stack
from vpop3d.app import accounts
from vpop3d.app.delivery import BAD_SENDER, DeliverySpool
from vpop3d.core.policy import BAD_RECIPIENT_SYNTAX
from vpop3d.core.reply import SMTP_RECIPIENT_UNKNOWN, SMTP_RELAY_DENIED, Reply, ReplyError
from vpop3d.ports import Envelope, SMTPContext
from vpop3d.store import folders, groups, messages, queue, users
from vpop3d.store.tables import blobs as blob_table
from vpop3d.store.tables import queue as queue_table
from vpop3d.store.tables import queue_recipients

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

BODY = b"Subject: test message\r\nTo: bill@a.test\r\n\r\nThis is a test message\r\n"


@pytest.fixture
def world(stack: Stack) -> World:
    for domain in ("a.test", "b.test"):
        stack.add_domain(domain)
    for name in ("fred", "kate", "bob", "joe", "fred.a", "fred.b"):
        stack.add_user(name)
    return make_world(stack)


def add_mapping(world: World, pattern: str, *targets: str, direction: str = "to") -> None:
    world.db.run_sync(accounts.add_mapping, pattern, list(targets), direction=direction)
    world.router.invalidate()


def refusal(world: World, context: SMTPContext, env: Envelope, rcpt: str) -> Reply | None:
    try:
        result(world.delivery.check_recipient(context, env, rcpt))
    except ReplyError as exc:
        return exc.reply
    return None


def send(
    world: World,
    context: SMTPContext,
    sender: str,
    *rcpts: str,
    body: bytes = BODY,
) -> str:
    """MAIL/RCPT/DATA as the SMTP adapter drives the port; every RCPT must pass."""
    env = envelope(sender)
    result(world.delivery.check_sender(context, env))
    for rcpt in rcpts:
        assert refusal(world, context, env, rcpt) is None, rcpt
        env.recipients.append((rcpt, envelope("", rcpt).recipients[0][1]))
    spool = world.delivery.open_spool()
    spool.write(body)
    return result(world.delivery.accept(context, env, spool))


def inbox(world: World, user: str) -> list[bytes]:
    def read(conn: Connection) -> list[bytes]:
        row = users.by_name(conn, user)
        assert row is not None
        folder = folders.inbox(conn, row.id)
        return [read_blob(world, conn, m.blob_id) for m in messages.in_folder(conn, folder.id)]

    return world.db.run_sync(read)


def read_blob(world: World, conn: Connection, blob_id: int) -> bytes:
    with world.stack.blobs.open(conn, blob_id) as handle:
        data: bytes = handle.read()
    return data


def queued(world: World) -> list[queue.QueueEntry]:
    return world.db.read_sync(queue.entries)


def test_check14_unknown_recipient(world: World) -> None:
    """Check 14: 550 Recipient not recognised for nosuch@a.test, fred@a.test passes."""
    ctx = world.context()
    env = envelope("x@remote.test")
    assert refusal(world, ctx, env, "nosuch@a.test") == SMTP_RECIPIENT_UNKNOWN
    assert refusal(world, ctx, env, "fred@a.test") is None
    assert str(SMTP_RECIPIENT_UNKNOWN) == "550 5.1.1 Recipient not recognised"


def test_check15_no_open_relay(world: World) -> None:
    """Check 15: strangers deliver locally but cannot relay; AUTH + Allow Any can."""
    env = envelope("x@remote.test")
    assert refusal(world, world.context(), env, "fred@a.test") is None
    assert refusal(world, world.context(), env, "x@remote.test") == SMTP_RELAY_DENIED
    world.put(
        "smtp.access_rules",
        [
            {"allow": False, "type": "routers"},
            {"allow": True, "type": "local-nets"},
            {"allow": True, "type": "any"},
        ],
    )
    world.put("smtp.require_auth", True)
    assert refusal(world, world.context(), env, "x@remote.test") == SMTP_RELAY_DENIED
    assert refusal(world, world.context(user="fred"), env, "x@remote.test") is None


def test_check16_local_nets(world: World) -> None:
    """Check 16: LAN relays without AUTH by default, not with Require SMTP Authentication."""
    env = envelope("fred@a.test")
    assert refusal(world, world.context(LAN_IP), env, "x@remote.test") is None
    world.put("smtp.require_auth", True)
    assert refusal(world, world.context(LAN_IP), env, "x@remote.test") == SMTP_RELAY_DENIED
    world.put(
        "smtp.access_rules",
        [{"allow": True, "type": "local-nets", "allow_unauth": True}],
    )
    assert refusal(world, world.context(LAN_IP), env, "x@remote.test") is None


def test_submission_listener_requires_auth(world: World) -> None:
    """The submission listener (587) needs AUTH even for local recipients."""
    ctx = world.context(LAN_IP, listener="submission")
    reply = refusal(world, ctx, envelope("fred@a.test"), "kate@a.test")
    assert reply is not None
    assert reply.code == 530
    authed = world.context(LAN_IP, listener="submission", user="fred")
    assert refusal(world, authed, envelope("fred@a.test"), "x@remote.test") is None


def test_check17_envelope_routing_and_trace_headers(world: World) -> None:
    """Check 17: only the RCPT recipient gets it; trace headers are on top."""
    queue_id = send(world, world.context(), "bob@domain.test", "joe@a.test")
    assert queue_id == "Q1"
    assert inbox(world, "fred") == []
    [stored] = inbox(world, "joe")
    lines = stored.split(b"\r\n")
    assert lines[0] == b"Received: from client.example.net ([203.0.113.9])"
    assert b"\r\nReturn-Path: <bob@domain.test>\r\nSubject: test message\r\n" in stored
    assert b"\tby mx.example.test\r\n\twith ESMTP id Q1\r\n\tfor <joe@a.test>;" in stored
    assert stored.endswith(BODY)


def test_null_sender_return_path(world: World) -> None:
    """A null reverse-path is recorded as Return-Path: <>."""
    send(world, world.context(), "", "fred@a.test")
    [stored] = inbox(world, "fred")
    assert stored.startswith(b"Received: ")
    assert b"\r\nReturn-Path: <>\r\nSubject:" in stored


def test_tls_and_auth_in_received(world: World) -> None:
    """An authenticated TLS session is recorded as ESMTPSA with the cipher (RFC 8314 §7)."""
    ctx = SMTPContext(
        "submission",
        LAN_IP,
        "laptop",
        True,
        world.context(user="fred").principal,
        "TLSv1.3 TLS_AES_256_GCM_SHA384",
    )
    send(world, ctx, "fred@a.test", "kate@a.test")
    [stored] = inbox(world, "kate")
    assert b"with ESMTPSA id Q1" in stored
    assert b"tls TLS_AES_256_GCM_SHA384 (TLSv1.3);" in stored


def test_check19_one_copy_across_domains(world: World) -> None:
    """Check 19: fred@a.test and fred@b.test reach fred; both in one message give one copy."""
    send(world, world.context(), "x@remote.test", "fred@a.test")
    send(world, world.context(), "x@remote.test", "fred@b.test")
    send(world, world.context(), "x@remote.test", "fred@a.test", "FRED@b.test")
    assert len(inbox(world, "fred")) == 3


def test_check20_and_21_redirect_and_copy(world: World) -> None:
    """Checks 20-21: fred → kate redirects; adding fred → fred copies."""
    add_mapping(world, "fred", "kate")
    send(world, world.context(), "x@remote.test", "fred@a.test")
    assert (len(inbox(world, "fred")), len(inbox(world, "kate"))) == (0, 1)
    add_mapping(world, "fred", "fred")
    send(world, world.context(), "x@remote.test", "fred@a.test")
    assert (len(inbox(world, "fred")), len(inbox(world, "kate"))) == (1, 2)


def test_check22_23_alias_and_split(world: World) -> None:
    """Checks 22-23: sales → fred; per-domain mappings reach their own users."""
    add_mapping(world, "sales", "fred")
    add_mapping(world, "fred@a.test", "fred.a")
    add_mapping(world, "fred@b.test", "fred.b")
    send(world, world.context(), "x@remote.test", "sales@a.test")
    send(world, world.context(), "x@remote.test", "fred@a.test")
    send(world, world.context(), "x@remote.test", "fred@b.test")
    assert len(inbox(world, "fred")) == 1
    assert len(inbox(world, "fred.a")) == 1
    assert len(inbox(world, "fred.b")) == 1


def test_check24_foreign_address(world: World) -> None:
    """Check 24: someone@elsewhere.test → fred is accepted from a stranger."""
    add_mapping(world, "someone@elsewhere.test", "fred")
    send(world, world.context(), "x@remote.test", "someone@elsewhere.test")
    assert len(inbox(world, "fred")) == 1
    assert queued(world) == []


def test_check25_26_wildcards_and_catch_all(world: World) -> None:
    """Checks 25-26: sup*@a.test and ~@a.test route; existing users keep their mail."""
    add_mapping(world, "sup*@a.test", "fred")
    add_mapping(world, "~@a.test", "kate")
    send(world, world.context(), "x@remote.test", "support@a.test")
    send(world, world.context(), "x@remote.test", "nosuch@a.test")
    send(world, world.context(), "x@remote.test", "fred@a.test")
    assert len(inbox(world, "fred")) == 2
    assert len(inbox(world, "kate")) == 1


def test_check27_remote_marker_queues(world: World) -> None:
    """Check 27: mapping mark → *REMOTE queues a local user's mail for the Internet."""
    add_mapping(world, "mark", "*REMOTE")
    ctx = world.context(LAN_IP, user="fred")
    send(world, ctx, "fred@a.test", "mark@a.test")
    [entry] = queued(world)
    assert entry.kind == "internet"
    assert [r[0] for r in entry.recipients] == ["mark@a.test"]
    assert world.kicks == [1]
    assert refusal(world, world.context(), envelope("x@y.test"), "mark@a.test") == (
        SMTP_RELAY_DENIED
    )


def test_check28_implied_switch(world: World) -> None:
    """Check 28: with implied mappings off, an existing user is unrecognised."""
    world.put("localmail.disable_implied_mappings", True)
    reply = refusal(world, world.context(), envelope("x@remote.test"), "fred@a.test")
    assert reply == SMTP_RECIPIENT_UNKNOWN


def test_mixed_local_and_remote(world: World) -> None:
    """Local copies get Return-Path; the queued copy does not (RFC 5321 §4.4)."""
    send(world, world.context(LAN_IP), "fred@a.test", "kate@a.test", "x@remote.test")
    [local] = inbox(world, "kate")
    assert local.startswith(b"Received: ")
    assert b"\r\nReturn-Path: <fred@a.test>\r\n" in local
    [entry] = queued(world)
    assert entry.sender == "fred@a.test"

    def queued_body(conn: Connection) -> bytes:
        blob_id = conn.execute(select(queue_table.c.blob_id)).scalar_one()
        return read_blob(world, conn, blob_id)

    body = world.db.read_sync(queued_body)
    assert body.startswith(b"Received: ")
    assert b"Return-Path" not in body


def test_lan_forward_target(world: World) -> None:
    """A mapping to SMTP:addr@user:pass@server:port queues a LAN-forward row."""
    add_mapping(world, "bob", "SMTP:bob@example.com@fred:mypass@127.0.0.1:2587")
    send(world, world.context(), "x@remote.test", "bob@a.test")
    [entry] = queued(world)
    assert entry.kind == "lan"
    assert [r[0] for r in entry.recipients] == ["bob@example.com"]
    route = world.db.read_sync(lambda c: c.execute(select(queue_recipients.c.route)).scalar_one())
    assert json.loads(route) == {
        "server": "127.0.0.1",
        "port": 2587,
        "username": "fred",
        "password": "mypass",
    }
    assert inbox(world, "bob") == []


def test_one_body_for_all_local_recipients(world: World) -> None:
    """Issue 4 item 5: one stored body however many local recipients."""
    send(world, world.context(), "x@remote.test", "fred@a.test", "kate@a.test", "joe@a.test")

    def blob_rows(conn: Connection) -> list[Any]:
        return list(conn.execute(select(blob_table.c.id, blob_table.c.refs)).all())

    [(_blob_id, refs)] = world.db.read_sync(blob_rows)
    assert refs == 3
    assert all(len(inbox(world, u)) == 1 for u in ("fred", "kate", "joe"))
    assert len(world.notifier.events) == 3


def test_failed_commit_leaves_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure inside the transaction leaves no message, blob or queue row behind."""

    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queue, "enqueue", broken)
    with pytest.raises(RuntimeError):
        send(world, world.context(LAN_IP), "fred@a.test", "kate@a.test", "x@remote.test")
    assert inbox(world, "kate") == []
    count = world.db.read_sync(
        lambda c: c.execute(select(func.count()).select_from(blob_table)).scalar_one()
    )
    assert count == 0
    assert world.notifier.events == []


def test_bad_sender_syntax(world: World) -> None:
    """A malformed MAIL FROM is refused with 501 5.1.7."""
    with pytest.raises(ReplyError) as caught:
        result(world.delivery.check_sender(world.context(), envelope("not an address")))
    assert caught.value.reply == BAD_SENDER


def test_percent_hack_refused(world: World) -> None:
    """seed-4 check 19: % and ! recipients are refused by default."""
    env = envelope("x@remote.test")
    assert refusal(world, world.context(), env, "bill%microsoft.com@a.test") == (
        BAD_RECIPIENT_SYNTAX
    )
    assert refusal(world, world.context(), env, "a!b@a.test") == BAD_RECIPIENT_SYNTAX
    world.put("smtp.reject_percent", False)
    assert refusal(world, world.context(), env, "bill%microsoft.com@a.test") == (
        SMTP_RECIPIENT_UNKNOWN
    )


def test_bare_postmaster(world: World) -> None:
    """RCPT TO:<Postmaster> reaches the postmaster user (RFC 5321 §4.1.1.3)."""
    send(world, world.context(), "x@remote.test", "Postmaster")
    assert len(inbox(world, "postmaster")) == 1


def _make_office(world: World, **fields: Any) -> None:
    def setup(conn: Connection) -> None:
        group = groups.add(conn, "office", force=True, **fields)
        bob = users.by_name(conn, "bob")
        kate = users.by_name(conn, "kate")
        assert bob is not None
        assert kate is not None
        users.update_fields(conn, bob.id, primary_group_id=group.id)
        users.update_fields(conn, kate.id, primary_group_id=group.id)

    world.db.run_sync(setup)
    world.router.invalidate()


def test_check33_group_receive_internet_off(world: World) -> None:
    """Check 33: members of a group without Internet receiving are unknown to strangers."""
    _make_office(world, allow_receive_internet=False)
    env = envelope("x@remote.test")
    assert refusal(world, world.context(), env, "bob@a.test") == SMTP_RECIPIENT_UNKNOWN
    assert refusal(world, world.context(), env, "fred@a.test") is None
    assert refusal(world, world.context(LAN_IP, user="fred"), env, "bob@a.test") is None


def test_check33_max_outgoing_size(world: World) -> None:
    """Check 33: 1 kB group limit refuses 5 kB to remote, not to local."""
    _make_office(world, max_outgoing_kb=1)
    big = b"Subject: big\r\n\r\n" + b"x" * 5 * 1024 + b"\r\n"
    ctx = world.context(LAN_IP, user="bob")
    with pytest.raises(ReplyError) as caught:
        send(world, ctx, "bob@a.test", "x@remote.test", body=big)
    assert caught.value.reply.code == 552
    assert queued(world) == []
    send(world, ctx, "bob@a.test", "fred@a.test", body=big)
    assert len(inbox(world, "fred")) == 1


def test_check33_reply_address(world: World) -> None:
    """Check 33: Reply Address *@a.test makes bob's outgoing sender bob@a.test."""
    _make_office(world, reply_address="*@a.test")
    send(world, world.context(LAN_IP, user="bob"), "bob@example.test", "x@remote.test")
    [entry] = queued(world)
    assert entry.sender == "bob@a.test"


def test_check33_send_internet_off(world: World) -> None:
    """Allow Sending Internet Mail off: the member cannot relay even when authenticated."""
    _make_office(world, allow_send_internet=False)
    reply = refusal(world, world.context(LAN_IP, user="bob"), envelope("bob@a.test"), "x@r.test")
    assert reply is not None
    assert reply.code == 550


def test_check34_group_address(world: World) -> None:
    """Check 34: office@a.test refused from outside, reaches all members from a local user."""
    _make_office(world)
    env = envelope("x@remote.test")
    assert refusal(world, world.context(), env, "office@a.test") == SMTP_RECIPIENT_UNKNOWN
    send(world, world.context(LAN_IP, user="fred"), "fred@a.test", "office@a.test")
    assert len(inbox(world, "bob")) == 1
    assert len(inbox(world, "kate")) == 1
    assert inbox(world, "fred") == []


def test_ids_events_recorded(world: World) -> None:
    """Refused relays and bad recipients are IDS events; enough of them block the IP."""
    env = envelope("x@remote.test")
    for _ in range(10):
        refusal(world, world.context(), env, "x@remote.test")
    assert world.access.admit(INTERNET_IP) is not None
    assert world.access.admit(LAN_IP) is None


def test_spool_is_discarded_after_accept(world: World) -> None:
    """The receive spool is closed once the body is stored."""
    env = envelope("x@remote.test")
    result(world.delivery.check_recipient(world.context(), env, "fred@a.test"))
    env.recipients.append(("fred@a.test", envelope("", "x").recipients[0][1]))
    spool = world.delivery.open_spool()
    assert isinstance(spool, DeliverySpool)
    spool.write(BODY)
    result(world.delivery.accept(world.context(), env, spool))
    with pytest.raises(ValueError, match="closed"):
        spool.write(b"more")


def test_max_message_size_setting(world: World) -> None:
    """Maximum Message Size defaults to 50000000 and follows the setting."""
    assert world.delivery.max_message_size(world.context()) == 50_000_000
    world.put("smtp.max_message_size", 100_000)
    assert world.delivery.max_message_size(world.context()) == 100_000


def test_add_date_header_for_local_submissions(world: World) -> None:
    """seed-4 check 21: with the option on, a local message without Date: gets one."""
    world.put("smtp.add_date_header", True)
    send(world, world.context(LAN_IP, user="fred"), "fred@a.test", "kate@a.test")
    [stored] = inbox(world, "kate")
    assert b"\r\nDate: " in stored.split(b"\r\n\r\n")[0]
    dated = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: x\r\n\r\nbody\r\n"
    send(world, world.context(LAN_IP, user="fred"), "fred@a.test", "joe@a.test", body=dated)
    [stored] = inbox(world, "joe")
    assert stored.count(b"Date: ") == 1
    send(world, world.context(), "x@remote.test", "bob@a.test")
    [stored] = inbox(world, "bob")
    assert b"Date: " not in stored


def test_original_recipients_header(world: World) -> None:
    """seed-4 check 21: one X-VPOP3-ORIGRCPT line per envelope recipient."""
    world.put("smtp.add_original_recipients", True)
    add_mapping(world, "sales", "fred")
    send(world, world.context(), "x@remote.test", "sales@a.test", "fred@b.test")
    [stored] = inbox(world, "fred")
    assert b"X-VPOP3-ORIGRCPT: <sales@a.test>\r\n" in stored
    assert b"X-VPOP3-ORIGRCPT: <fred@b.test>\r\n" in stored


def test_outqueue_brake(world: World) -> None:
    """seed-4 check 22: over the Outqueue limit the next outgoing RCPT gets 451."""
    world.put("smtp.outqueue_limit", 1)
    ctx = world.context(LAN_IP)
    send(world, ctx, "fred@a.test", "x@remote.test")
    reply = refusal(world, ctx, envelope("fred@a.test"), "y@remote.test")
    assert reply is not None
    assert (reply.code, reply.enhanced) == (451, "4.3.1")
    assert refusal(world, ctx, envelope("fred@a.test"), "kate@a.test") is None


def test_wiring_shares_one_delivery(stack: Stack, tmp_path: Any) -> None:
    """The wiring builds one Delivery/Router/AccessControl per server context."""
    from dataclasses import dataclass, field

    from twisted.internet.task import Clock

    from vpop3d import wiring_delivery

    @dataclass
    class Config:
        hostname: str = "mx.example.test"
        data_dir: Any = tmp_path

    @dataclass
    class Context:
        database: Any
        settings: Any
        blob_store: Any
        bus: Any
        authenticator: Any
        reactor: Any = field(default_factory=Clock)
        config: Config = field(default_factory=Config)
        extras: dict[str, Any] = field(default_factory=dict)

        def shared(self, name: str, make: Any) -> Any:
            if name not in self.extras:
                self.extras[name] = make()
            return self.extras[name]

    context = Context(stack.db, stack.settings, stack.blobs, stack.bus, stack.auth)
    first = wiring_delivery.shared_delivery(context)  # type: ignore[arg-type]
    assert wiring_delivery.shared_delivery(context) is first  # type: ignore[arg-type]
    assert wiring_delivery.shared_access(context) is context.extras["access"]  # type: ignore[arg-type]
    wrapped = wiring_delivery.shared_authenticator(context)  # type: ignore[arg-type]
    assert wrapped is wiring_delivery.shared_authenticator(context)  # type: ignore[arg-type]


@ensure_deferred
async def test_accept_through_the_thread_pool(stack: Stack) -> None:
    """The real Database pool path: RCPT and DATA end complete and the mail is stored."""
    from twisted.internet import reactor

    from vpop3d.app.access import AccessControl
    from vpop3d.app.delivery import Delivery
    from vpop3d.app.routing import Router

    stack.add_domain("a.test")
    stack.add_user("fred")
    router = Router(stack.db, reactor)
    access = AccessControl(stack.settings, reactor)
    delivery = Delivery(
        stack.db,
        stack.blobs,
        router,
        access,
        stack.bus,
        stack.settings,
        clock=reactor,
        hostname="mx.example.test",
        tmp_dir=stack.data_dir / "tmp",
    )
    ctx = SMTPContext("smtp", INTERNET_IP, "client.example.net", False, None)
    env = envelope("x@remote.test")
    await delivery.check_sender(ctx, env)
    await delivery.check_recipient(ctx, env, "fred@a.test")
    env.recipients.append(("fred@a.test", envelope("", "x").recipients[0][1]))
    spool = delivery.open_spool()
    spool.write(BODY)
    queue_id = await delivery.accept(ctx, env, spool)
    assert queue_id

    def count(conn: Connection) -> int:
        user = users.by_name(conn, "fred")
        assert user is not None
        return messages.count(conn, folders.inbox(conn, user.id).id)

    assert await stack.db.read(count) == 1


def test_unrecognised_goes_to_admin_when_not_rejected(world: World) -> None:
    """With rejection off, unknown local recipients reach the main administrator."""
    world.put("smtp.reject_unrecognised", False)
    send(world, world.context(), "x@remote.test", "nosuch@a.test")
    assert len(inbox(world, "postmaster")) == 1


def test_vanished_target_goes_to_admin(world: World) -> None:
    """A user deleted between RCPT and DATA does not make the message disappear."""
    env = envelope("x@remote.test")
    ctx = world.context()
    assert refusal(world, ctx, env, "joe@a.test") is None
    env.recipients.append(("joe@a.test", envelope("", "x").recipients[0][1]))
    world.db.run_sync(accounts.delete_user, "joe")
    world.router.invalidate()
    spool = world.delivery.open_spool()
    spool.write(BODY)
    result(world.delivery.accept(ctx, env, spool))
    assert len(inbox(world, "postmaster")) == 1


def test_declared_size_over_group_limit_refused_at_rcpt(world: World) -> None:
    """MAIL SIZE=5120 from a 1 kB member is refused at the first remote RCPT."""
    from vpop3d.ports import EnvelopeParams

    _make_office(world, max_outgoing_kb=1)
    env = Envelope("bob@a.test", EnvelopeParams(size=5120))
    ctx = world.context(LAN_IP, user="bob")
    reply = refusal(world, ctx, env, "x@remote.test")
    assert reply is not None
    assert reply.code == 552
    assert refusal(world, ctx, env, "fred@a.test") is None


def test_lan_forwarding_rules_setting(world: World) -> None:
    """features-b §19 check 6 (routing part): ~@ rule forwards unknown, users stay local."""
    world.put(
        "lanforward.rules",
        [
            {"address": "~@a.test", "server": "127.0.0.1:2600"},
            {"address": "*@old.test", "server": "127.0.0.1:2600", "rewrite": "*@new.test"},
        ],
    )
    send(world, world.context(), "x@remote.test", "fred@a.test", "zed@a.test", "joe@old.test")
    assert len(inbox(world, "fred")) == 1
    [entry] = queued(world)
    assert entry.kind == "lan"
    assert sorted(r[0] for r in entry.recipients) == ["joe@new.test", "zed@a.test"]


def test_check_from_address_mode(world: World) -> None:
    """seed-4 §7.2 Check FROM address: relay when MAIL FROM is a local address."""
    world.put("smtp.anti_relay_mode", "check-from-address")
    ctx = world.context()
    assert refusal(world, ctx, envelope("fred@a.test"), "x@remote.test") is None
    assert refusal(world, ctx, envelope("x@elsewhere.test"), "x@remote.test") == (SMTP_RELAY_DENIED)
    assert refusal(world, ctx, envelope(""), "x@remote.test") == SMTP_RELAY_DENIED


def test_no_one_mapping_discards(world: World) -> None:
    """features-a §3a check 8: spam → No-one gets 250 and no mailbox receives anything."""
    add_mapping(world, "spam", "No-one")
    send(world, world.context(), "x@remote.test", "spam@a.test")
    assert inbox(world, "postmaster") == []
    count = world.db.read_sync(
        lambda c: c.execute(select(func.count()).select_from(blob_table)).scalar_one()
    )
    assert count == 0


def _body(world: World, data: bytes = BODY) -> DeliverySpool:
    spool = world.delivery.open_spool()
    assert isinstance(spool, DeliverySpool)
    spool.write(data)
    return spool


def test_inject_download_routes_by_accepted_domains(world: World) -> None:
    """Check 29: a download To fred@a.test, Cc x@other.test reaches fred only."""
    from vpop3d.core.mapping import LocalDomains

    outcome = result(
        Deferred.fromCoroutine(
            world.delivery.inject(
                "someone@isp.test",
                ["fred@a.test", "x@other.test", "nosuch@a.test"],
                _body(world),
                trace=b"Received: from pop.isp.test by mx.example.test; date\r\n",
                local_domains=LocalDomains.of(["a.test"]),
            )
        )
    )
    assert outcome.queue_id
    assert outcome.ignored == ("x@other.test",)
    assert outcome.unrecognised == ("nosuch@a.test",)
    [stored] = inbox(world, "fred")
    assert stored.startswith(b"Received: from pop.isp.test")
    assert b"\r\nReturn-Path: <someone@isp.test>\r\n" in stored
    assert queued(world) == []


def test_inject_from_mapping_and_remote_marker(world: World) -> None:
    """Check 29/27: FROM customer@client.test → kate; *REMOTE recipients are ignored."""
    add_mapping(world, "customer@client.test", "kate", direction="from")
    add_mapping(world, "mark", "*REMOTE")
    outcome = result(
        Deferred.fromCoroutine(
            world.delivery.inject("customer@client.test", ["mark@a.test"], _body(world))
        )
    )
    assert outcome.ignored == ("mark@a.test",)
    assert len(inbox(world, "kate")) == 1


def test_inject_nothing_deliverable_stores_nothing(world: World) -> None:
    """Only unknown addresses: nothing stored, the caller handles the routing error."""
    outcome = result(
        Deferred.fromCoroutine(
            world.delivery.inject("a@isp.test", ["nosuch@a.test"], _body(world), implied=False)
        )
    )
    assert outcome.queue_id == ""
    assert outcome.unrecognised == ("nosuch@a.test",)
    assert inbox(world, "postmaster") == []


def test_inject_smtp_source_queues_remote(world: World) -> None:
    """A non-SMTP entry with Source.SMTP (e.g. a DSN or list) queues remote recipients."""
    from vpop3d.core.mapping import Source

    outcome = result(
        Deferred.fromCoroutine(
            world.delivery.inject(
                "", ["x@remote.test", "fred@a.test"], _body(world), source=Source.SMTP
            )
        )
    )
    assert outcome.queue_id
    [entry] = queued(world)
    assert entry.sender == ""
    assert len(inbox(world, "fred")) == 1


def test_check32_distribution_list(stack: Stack) -> None:
    """Check 32: team = fred, r@remote.test, list sub (kate): BCC fan-out, headers untouched."""
    from tests.app.delivery_support import FakeLists

    stack.add_domain("a.test")
    for name in ("fred", "kate"):
        stack.add_user(name)
    lists = FakeLists({"team": ["fred", "r@remote.test", "sub", "team"], "sub": ["kate@a.test"]})
    world = make_world(stack, lists)
    send(world, world.context(), "x@remote.test", "team@a.test")
    [fred_copy] = inbox(world, "fred")
    assert fred_copy.endswith(BODY)
    assert len(inbox(world, "kate")) == 1
    [entry] = queued(world)
    assert [r[0] for r in entry.recipients] == ["r@remote.test"]


def test_list_without_lists_service_expands_to_nothing(world: World) -> None:
    """Without a lists service a list target expands to no targets (the plan then
    hands the message to the administrator rather than dropping it)."""
    from vpop3d.core.mapping import ListTarget
    from vpop3d.core.policy import RecipientDecision
    from vpop3d.ports import RecipientParams

    decisions = [
        ("team@a.test", RecipientParams(), RecipientDecision(None, targets=(ListTarget("team"),)))
    ]
    expanded = result(Deferred.fromCoroutine(world.delivery.expand_lists(decisions)))
    assert expanded[0][2].targets == ()


def test_lazy_lists_lookup() -> None:
    """The wiring finds the lists feature in context.extras when it is needed."""
    from tests.app.delivery_support import FakeLists
    from vpop3d.wiring_delivery import _LazyLists

    class Context:
        extras: dict[str, Any] = {}

    context = Context()
    lazy = _LazyLists(context)  # type: ignore[arg-type]
    assert result(lazy.members("team")) == []
    assert list(lazy.names(None)) == []  # type: ignore[arg-type]
    fake = FakeLists({"team": ["fred"]})
    context.extras.update({"lists": fake, "lists.names": fake.names})
    assert result(lazy.members("team")) == ["fred"]
    assert list(lazy.names(None)) == ["team"]  # type: ignore[arg-type]


def test_helo_session_received_with_smtp(world: World) -> None:
    """A HELO (not EHLO) session is recorded as "with SMTP" (RFC 3848 §2)."""
    from dataclasses import replace

    ctx = replace(world.context(), esmtp=False)
    send(world, ctx, "x@remote.test", "fred@a.test")
    [stored] = inbox(world, "fred")
    assert b"\twith SMTP id Q1" in stored
