"""Mail Collectors end to end: a second vpop3d store serves the "ISP" POP3 mailbox on
loopback (the real POP3 listener built by ``vpop3d.wiring_pop3``), and a collector
downloads it into the test's own stack. Spec seed-1 checks 29-30; issue 8 faults.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection, create_engine, select
from twisted.internet import protocol, reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort

from tests.integration.test_pop3_loopback import deliver, inbox_ids, listen
from tests.support.database import _stamp
from tests.support.stack import Stack, make_stack
from vpop3d.app.access import AccessControl
from vpop3d.app.collectors import CollectorRunner, RunResult
from vpop3d.app.delivery import Delivery
from vpop3d.app.routing import Router
from vpop3d.core.netrule import NetworkFacts
from vpop3d.store import blobs as blob_repo
from vpop3d.store import collectors as repo
from vpop3d.store import folders, mappings, messages, users
from vpop3d.store.tables import metadata, queue, queue_recipients

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
async_fixture = cast(Callable[[_F], _F], pytest_twisted.async_yield_fixture)
DAY = 86400.0


def isp_stack(tmp_path: Path) -> Stack:
    """The ISP's own store: always a private SQLite file (the test's database is ours)."""
    directory = tmp_path / "isp"
    (directory / "data").mkdir(parents=True)
    url = f"sqlite:///{directory / 'isp.sqlite3'}"
    engine = create_engine(url)
    metadata.create_all(engine)
    _stamp(engine)
    engine.dispose()
    built = make_stack(directory / "data", url, reactor)
    built.db.start()
    return built


@dataclass
class World:
    local: Stack
    isp: Stack
    isp_box: int
    runner: CollectorRunner
    port: int
    clock: list[float]
    kicks: list[int]

    def add_collector(self, name: str = "isp", **fields: Any) -> int:
        values: dict[str, Any] = {
            "server": "127.0.0.1",
            "port": self.port,
            "username": "box",
            "password": "secret",
            "routing": "headers",
            "accepted_domains": "a.test;b.test",
        }
        values.update(fields)
        return self.local.db.run_sync(repo.add, name, **values)

    def put_at_isp(self, body: bytes) -> int:
        return deliver(self.isp, self.isp_box, body)

    def isp_count(self) -> int:
        return len(inbox_ids(self.isp, self.isp_box))

    def inbox(self, user_id: int) -> list[bytes]:
        def read(conn: Connection) -> list[bytes]:
            inbox = folders.inbox(conn, user_id)
            rows = messages.in_folder(conn, inbox.id)
            return [blob_repo.read_bytes(conn, self.local.blobs, row.blob_id) for row in rows]

        return self.local.db.read_sync(read)

    async def run(self, collector_id: int) -> RunResult:
        result: RunResult = await self.runner.run(collector_id)
        return result


def make_runner(
    stack: Stack, clock: list[float] | None = None, kicks: list[int] | None = None
) -> CollectorRunner:
    """The collector as the server wires it, over the test's stack."""
    router = Router(stack.db, reactor, settings=stack.settings, ttl=0.0)
    facts = NetworkFacts.of(["127.0.0.1"], ["127.0.0.0/8"])
    delivery = Delivery(
        stack.db,
        stack.blobs,
        router,
        AccessControl(stack.settings, reactor, facts=facts),
        stack.bus,
        stack.settings,
        clock=reactor,
        hostname="mail.example.test",
    )
    now = clock if clock is not None else [1_800_000_000.0]
    kicked = kicks if kicks is not None else []
    return CollectorRunner(
        stack.db,
        stack.blobs,
        delivery,
        router,
        stack.bus,
        stack.settings,
        reactor=reactor,
        hostname="mail.example.test",
        queue_kick=lambda: kicked.append(1),
        timeout=10.0,
        now=lambda: now[0],
    )


@async_fixture
async def world(stack: Stack, tmp_path: Path) -> Any:
    isp = isp_stack(tmp_path)
    box = isp.add_user("box")
    clock = [1_800_000_000.0]
    kicks: list[int] = []
    runner = make_runner(stack, clock, kicks)
    loop = await listen(isp)
    yield World(stack, isp, box, runner, loop.port, clock, kicks)
    await loop.stop()
    isp.db.stop()


def _user_id(world: World, name: str) -> int:
    user = world.local.db.read_sync(users.by_name, name)
    assert user is not None
    return user.id


def _row(world: World, collector: int) -> dict[str, Any]:
    row = world.local.db.read_sync(repo.by_id, collector)
    assert row is not None
    return row


def mail(to: str, *, cc: str = "", sender: str = "someone@remote.test", n: int = 0) -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\n"
    if cc:
        head += f"Cc: {cc}\r\n"
    head += f"Subject: message {n}\r\nMessage-ID: <m{n}@remote.test>\r\n\r\n"
    return head.encode() + b"Body line\r\n.dot line\r\n"


# ----------------------------------------------------------------- seed-1 check 29


@ensure_deferred
async def test_check_29_parse_headers_accepted_domains(world: World) -> None:
    """To fred@a.test + Cc x@other.test with Accepted Domains a.test: fred only, once."""
    fred = world.local.add_user("fred")
    x = world.local.add_user("x")
    world.put_at_isp(mail("fred@a.test", cc="x@other.test"))
    collector = world.add_collector(accepted_domains="a.test")
    result = await world.run(collector)
    assert result.ok, result.text
    [stored] = world.inbox(fred)
    assert world.inbox(x) == []
    assert stored.startswith(b"Received: from 127.0.0.1 (POP3 account box)")
    assert b"\r\n.dot line\r\n" in stored  # dot-unstuffed
    assert world.isp_count() == 0  # leave-on-server 0: deleted after storing


@ensure_deferred
async def test_check_29_from_mapping(world: World) -> None:
    """A FROM-mapping customer@client.test -> kate sends that sender's mail to kate."""
    kate = world.local.add_user("kate")
    world.local.db.run_sync(mappings.add, "customer@client.test", ["kate"], "from")
    world.put_at_isp(mail("nobody@elsewhere.test", sender="customer@client.test"))
    collector = world.add_collector(accepted_domains="a.test")
    result = await world.run(collector)
    assert result.ok, result.text
    assert len(world.inbox(kate)) == 1


@ensure_deferred
async def test_remote_mapping_is_ignored_and_unroutable_goes_to_admin(world: World) -> None:
    """*REMOTE recipients are ignored; a message with no valid recipient reaches the
    main administrator as an error notice with the message attached (seed-3 §6)."""
    world.local.add_user("kate")
    world.local.db.run_sync(mappings.add, "kate", ["*REMOTE"])
    admin_id = _user_id(world, "postmaster")
    world.put_at_isp(mail("kate@a.test"))
    collector = world.add_collector(accepted_domains="a.test")
    result = await world.run(collector)
    assert result.ok, result.text
    [stored] = world.inbox(admin_id)
    assert b"X-VPOP3-Routing-Error:" in stored
    assert b"Subject: Routing error in Mail Collector isp" in stored
    attached = stored.split(b"Content-Type: message/rfc822\r\n\r\n", 1)[1]
    assert attached.startswith(b"From: someone@remote.test\r\nTo: kate@a.test\r\n")
    assert world.isp_count() == 0


@ensure_deferred
async def test_routing_error_message_itself_or_bounce(world: World) -> None:
    """'Send the Incoming Message to <address>' files the message itself there;
    'Bounce' keeps no copy and queues a failure notice to the sender (seed-3 §6)."""
    bob = world.local.add_user("bob")
    world.put_at_isp(mail("nobody@a.test", n=1))
    forward = world.add_collector(
        "fwd", accepted_domains="a.test", error_action="address-message", error_address="bob"
    )
    assert (await world.run(forward)).ok
    [stored] = world.inbox(bob)
    assert b"Subject: message 1" in stored
    assert b"message/rfc822" not in stored
    world.put_at_isp(mail("nobody@a.test", n=2, sender="victim@remote.test"))
    bounce = world.add_collector("bnc", accepted_domains="a.test", error_action="bounce")
    assert (await world.run(bounce)).ok
    assert len(world.inbox(bob)) == 1

    def queued(conn: Connection) -> list[tuple[str, str, str]]:
        query = select(queue.c.kind, queue.c.sender, queue_recipients.c.address).join(
            queue_recipients, queue_recipients.c.queue_id == queue.c.id
        )
        return [(r.kind, r.sender, r.address) for r in conn.execute(query)]

    assert world.local.db.read_sync(queued) == [("internet", "", "victim@remote.test")]
    assert world.isp_count() == 0


# ----------------------------------------------------------------- seed-1 check 30


@ensure_deferred
async def test_check_30_single_user(world: World) -> None:
    """ "All messages to a single user" puts every message into the Target User."""
    bob = world.local.add_user("bob")
    for n in range(3):
        world.put_at_isp(mail(f"u{n}@far.test", n=n))
    collector = world.add_collector(routing="user", target_user="bob")
    result = await world.run(collector)
    assert result.ok, result.text
    assert len(world.inbox(bob)) == 3


@ensure_deferred
async def test_check_30_other_server(world: World) -> None:
    """ "...on another server" queues each message for the Target address at the Target
    server (LAN forward: own route, no MX)."""
    world.put_at_isp(mail("anyone@far.test"))
    collector = world.add_collector(
        routing="server", target_address="joe@exchange.test", target_server="u:p@127.0.0.1:2525"
    )
    result = await world.run(collector)
    assert result.ok, result.text

    def rows(conn: Connection) -> list[tuple[str, str, str]]:
        query = select(queue.c.kind, queue_recipients.c.address, queue_recipients.c.route).join(
            queue_recipients, queue_recipients.c.queue_id == queue.c.id
        )
        return [(r.kind, r.address, r.route) for r in conn.execute(query)]

    [(kind, address, route)] = world.local.db.read_sync(rows)
    assert (kind, address) == ("lan", "joe@exchange.test")
    assert json.loads(route) == {
        "server": "127.0.0.1",
        "port": 2525,
        "username": "u",
        "password": "p",
    }
    assert world.kicks


# ----------------------------------------------------------------- exactly once


@ensure_deferred
async def test_500_messages_several_users_and_domains_exactly_once(world: World) -> None:
    """500 messages for users in two domains each land once in the right mailbox."""
    users = {name: world.local.add_user(name) for name in ("ann", "ben", "cat", "dan")}
    expected: dict[str, int] = dict.fromkeys(users, 0)
    for n in range(500):
        name = list(users)[n % 4]
        domain = "a.test" if n % 3 else "b.test"
        world.put_at_isp(mail(f"{name}@{domain}", n=n))
        expected[name] += 1
    collector = world.add_collector()
    result = await world.run(collector)
    assert result.ok, result.text
    assert result.downloaded == 500
    for name, user_id in users.items():
        stored = world.inbox(user_id)
        assert len(stored) == expected[name]
        ids = {
            line
            for body in stored
            for line in body.split(b"\r\n")
            if line.startswith(b"Message-ID")
        }
        assert len(ids) == expected[name]
    assert world.isp_count() == 0


@ensure_deferred
async def test_leave_on_server_three_runs_download_once_then_delete_when_due(world: World) -> None:
    """Leave-on-server 2 days: three runs download each message once; after 2 days
    the next run deletes them at the ISP."""
    fred = world.local.add_user("fred")
    for n in range(5):
        world.put_at_isp(mail("fred@a.test", n=n))
    collector = world.add_collector(leave_days=2)
    for _ in range(3):
        result = await world.run(collector)
        assert result.ok, result.text
        world.clock[0] += 3600
    assert len(world.inbox(fred)) == 5
    assert world.isp_count() == 5
    world.clock[0] += 2 * DAY
    result = await world.run(collector)
    assert result.ok, result.text
    assert result.deleted == 5
    assert world.isp_count() == 0
    assert len(world.inbox(fred)) == 5
    tab = world.local.db.read_sync(repo.uidls, collector)
    assert all(row["stored"] and row["deleted"] for row in tab.values())


class _CuttingProxy(protocol.Protocol):
    """Forwards to the ISP; cuts the client off after ``limit`` bytes from the server."""

    def __init__(self, target: int, limit: int) -> None:
        self.target = target
        self.limit = limit
        self.sent = 0
        self.peer: protocol.Protocol | None = None
        self.buffer: list[bytes] = []

    def connectionMade(self) -> None:
        self.transport.pauseProducing()  # type: ignore[union-attr]
        outer = self

        class Back(protocol.Protocol):
            def connectionMade(self) -> None:
                outer.peer = self
                for chunk in outer.buffer:
                    self.transport.write(chunk)  # type: ignore[union-attr]
                outer.transport.resumeProducing()  # type: ignore[union-attr]

            def dataReceived(self, data: bytes) -> None:
                outer.sent += len(data)
                outer.transport.write(data)  # type: ignore[union-attr]
                if outer.sent > outer.limit:
                    outer.transport.abortConnection()  # type: ignore[union-attr]
                    self.transport.abortConnection()  # type: ignore[union-attr]

            def connectionLost(self, reason: Any = None) -> None:
                outer.transport.loseConnection()  # type: ignore[union-attr]

        protocol.ClientCreator(reactor, Back).connectTCP("127.0.0.1", self.target)

    def dataReceived(self, data: bytes) -> None:
        if self.peer is None:
            self.buffer.append(data)
        else:
            self.peer.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseConnection()


@ensure_deferred
async def test_connection_cut_mid_download_then_rerun_every_message_once(world: World) -> None:
    """The link dies in the middle of the downloads (and again later): re-runs finish
    with every message stored exactly once and none left at the ISP."""
    fred = world.local.add_user("fred")
    for n in range(40):
        world.put_at_isp(mail("fred@a.test", n=n) + b"x" * 2000 + b"\r\n")
    limits = [15_000, 40_000, 10**9]
    factory = protocol.Factory()
    factory.protocol = lambda: _CuttingProxy(world.port, limits[0])
    listening: IListeningPort = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        factory
    )
    proxy_port: int = listening.getHost().port  # type: ignore[attr-defined]
    try:
        collector = world.add_collector(port=proxy_port)
        failures = 0
        result = RunResult(False, "not run")
        while limits:
            result = await world.run(collector)
            failures += 0 if result.ok else 1
            limits.pop(0)
            if limits:
                factory.protocol = lambda limit=limits[0]: _CuttingProxy(world.port, limit)
        assert failures >= 1
        assert result.ok, result.text
    finally:
        stopping = listening.stopListening()
        if stopping is not None:
            await stopping
    bodies = world.inbox(fred)
    subjects = sorted(b.split(b"Subject: ")[1].split(b"\r\n")[0] for b in bodies)
    assert subjects == sorted(f"message {n}".encode() for n in range(40))
    assert world.isp_count() == 0


# ----------------------------------------------------------------- failures


@ensure_deferred
async def test_auth_failure_sets_last_result_with_masked_password(world: World) -> None:
    """A refused PASS is the last result, in the manual's format, password masked."""
    collector = world.add_collector(password="wrong")
    result = await world.run(collector)
    assert not result.ok
    row = _row(world, collector)
    assert row["last_result"].startswith('Error from remote server on "PASS *****" -> -ERR')
    assert "wrong" not in row["last_result"]


@ensure_deferred
async def test_server_down_sets_last_result(world: World) -> None:
    """No server listening: the run fails and says why."""
    collector = world.add_collector(port=1)
    result = await world.run(collector)
    assert not result.ok
    assert "cannot connect" in _row(world, collector)["last_result"]


@ensure_deferred
async def test_stls_required_but_not_offered_sends_no_credentials(
    stack: Stack, tmp_path: Path
) -> None:
    """STLS mode against a server without STLS refuses to continue (seed-3 §3.1)."""
    isp = isp_stack(tmp_path)
    isp.add_user("box")
    loop = await listen(isp, starttls="off")
    try:
        runner = CollectorRunner(
            stack.db,
            stack.blobs,
            cast(Any, None),
            cast(Any, None),
            stack.bus,
            stack.settings,
            reactor=reactor,
            hostname="mail.example.test",
            timeout=10.0,
        )
        collector = stack.db.run_sync(
            repo.add,
            "isp",
            server="127.0.0.1",
            port=loop.port,
            username="box",
            password="secret",
            tls_mode="stls",
        )
        result = await runner.run(collector)
    finally:
        await loop.stop()
        isp.db.stop()
    assert not result.ok
    assert "STLS" in result.text


@ensure_deferred
async def test_stls_optional_upgrades_and_collects(world: World) -> None:
    """STLS-if-available upgrades (CAPA lists STLS) and then downloads as usual."""
    fred = world.local.add_user("fred")
    world.put_at_isp(mail("fred@a.test"))
    collector = world.add_collector(tls_mode="stls-optional", tls_verify=False)
    result = await world.run(collector)
    assert result.ok, result.text
    assert len(world.inbox(fred)) == 1


# ----------------------------------------------------------------- Download Rules


def add_rule(
    world: World, name: str, action: str, conditions: list[dict[str, Any]], **kw: Any
) -> None:
    world.local.db.run_sync(
        repo.add_rule, name=name, action=action, conditions=json.dumps(conditions), **kw
    )


@ensure_deferred
async def test_download_rules_before_download(world: World) -> None:
    """TOP-based rules: delete silently (gone at once), ignore (stays, not fetched),
    redirect (to the target only, tagged X-VPOP3Rules), default download."""
    fred = world.local.add_user("fred")
    boss = world.local.add_user("boss")
    add_rule(
        world, "spam", "delete-silently", [{"field": "Subject", "op": "contains", "data": "spam"}]
    )
    add_rule(world, "later", "ignore", [{"field": "Subject", "op": "contains", "data": "later"}])
    add_rule(world, "to boss", "redirect", [{"field": "From", "op": "contains", "data": "vip@"}],
             targets="boss")  # fmt: skip
    world.put_at_isp(mail("fred@a.test", n=1).replace(b"message 1", b"spam offer"))
    world.put_at_isp(mail("fred@a.test", n=2).replace(b"message 2", b"read later"))
    world.put_at_isp(mail("fred@a.test", n=3, sender="vip@client.test"))
    world.put_at_isp(mail("fred@a.test", n=4))
    collector = world.add_collector(use_rules=True, leave_days=1)
    result = await world.run(collector)
    assert result.ok, result.text
    [plain] = world.inbox(fred)
    assert b"Subject: message 4" in plain
    [redirected] = world.inbox(boss)
    assert b"X-VPOP3Rules: to boss redirect\r\n" in redirected
    assert world.isp_count() == 3  # spam deleted; "later" ignored; two left on server
    world.clock[0] += 2 * DAY
    result = await world.run(collector)
    assert result.ok, result.text
    assert world.isp_count() == 0  # ignored and downloaded ones are past Leave-on-Server
    assert len(world.inbox(fred)) == 1


@ensure_deferred
async def test_max_messages_per_session(world: World) -> None:
    """max messages per session limits each run; every message still arrives once."""
    fred = world.local.add_user("fred")
    for n in range(7):
        world.put_at_isp(mail("fred@a.test", n=n))
    collector = world.add_collector(max_messages=3)
    downloaded = []
    for _ in range(3):
        result = await world.run(collector)
        assert result.ok, result.text
        downloaded.append(result.downloaded)
    assert downloaded == [3, 3, 1]
    assert len(world.inbox(fred)) == 7
    assert world.isp_count() == 0


@ensure_deferred
async def test_delete_when_deleted_locally(world: World) -> None:
    """With leave-on-server, a message is deleted at the ISP once its local copy is gone."""
    fred = world.local.add_user("fred")
    world.put_at_isp(mail("fred@a.test", n=1))
    world.put_at_isp(mail("fred@a.test", n=2))
    collector = world.add_collector(leave_days=30, delete_when_deleted_locally=True)
    assert (await world.run(collector)).ok
    assert world.isp_count() == 2

    def drop_first(conn: Connection) -> None:
        inbox = folders.inbox(conn, fred)
        first = messages.in_folder(conn, inbox.id)[0]
        messages.remove(conn, [first.id])

    world.local.db.run_sync(drop_first)
    result = await world.run(collector)
    assert result.ok, result.text
    assert result.deleted == 1
    assert world.isp_count() == 1


@ensure_deferred
async def test_oversize_message_stays_and_admin_is_told_once(world: World) -> None:
    """Over the size limit: not downloaded, left at the ISP, one notice to the admin."""
    fred = world.local.add_user("fred")
    admin = _user_id(world, "postmaster")
    world.put_at_isp(mail("fred@a.test", n=1) + b"z" * 70 + b"\r\n" * 2000)
    world.put_at_isp(mail("fred@a.test", n=2))
    collector = world.add_collector(max_size_kb=1)
    for _ in range(2):
        result = await world.run(collector)
        assert result.ok, result.text
    assert len(world.inbox(fred)) == 1
    assert world.isp_count() == 1
    [notice] = world.inbox(admin)
    assert b"Subject: Message too big to download (isp)" in notice
    assert b"Subject: message 1" in notice


@ensure_deferred
async def test_apop_and_cram_md5_logins(stack: Stack, tmp_path: Path) -> None:
    """APOP and AUTH CRAM-MD5 log in to a vpop3d ISP that keeps plaintext equivalents."""
    isp = isp_stack(tmp_path)
    isp.put_setting("auth.allow_plaintext_equivalent", True)
    box = isp.add_user("box")
    fred = stack.add_user("fred")
    for n in range(2):
        deliver(isp, box, mail("fred@a.test", n=n))
    loop = await listen(isp)
    try:
        world = World(stack, isp, box, make_runner(stack), loop.port, [1.8e9], [])
        for method in ("apop", "cram-md5"):
            collector = world.add_collector(name=method, auth_method=method, leave_days=5)
            result = await world.run(collector)
            assert result.ok, f"{method}: {result.text}"
        assert len(world.inbox(fred)) == 4  # two collectors, each downloads both once
    finally:
        await loop.stop()
        isp.db.stop()


@ensure_deferred
async def test_bcc_routed_by_special_header_then_received_for(world: World) -> None:
    """A BCC'd message (To: foreign) is routed by X-RCPTTO (special header) or, failing
    that, by the Received 'for' clause, in the default header processing order."""
    fred = world.local.add_user("fred")
    bob = world.local.add_user("bob")
    world.put_at_isp(b"X-RCPTTO: bob@a.test\r\n" + mail("list@far.test", n=1))
    world.put_at_isp(
        b"Received: from mx by isp for <fred@a.test>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        + mail("list@far.test", n=2)
    )
    options = json.dumps({"special": ["X-RCPTTO"]})
    collector = world.add_collector(accepted_domains="a.test", routing_options=options)
    result = await world.run(collector)
    assert result.ok, result.text
    assert len(world.inbox(bob)) == 1
    assert len(world.inbox(fred)) == 1


@ensure_deferred
async def test_headers_only_rule_stores_just_the_header_block(world: World) -> None:
    """The Headers only action fetches TOP n 0 and delivers that (seed-3 §4.3)."""
    fred = world.local.add_user("fred")
    add_rule(world, "heads", "headers-only", [{"field": "Always", "data": "1"}])
    world.put_at_isp(mail("fred@a.test", n=1) + b"SECRET BODY\r\n")
    collector = world.add_collector(use_rules=True)
    result = await world.run(collector)
    assert result.ok, result.text
    [stored] = world.inbox(fred)
    assert b"Subject: message 1" in stored
    assert b"X-VPOP3Rules: heads headers-only" in stored
    assert b"SECRET BODY" not in stored
    assert world.isp_count() == 0


@ensure_deferred
async def test_messages_tab_get_and_del_flags(world: World) -> None:
    """Get re-downloads a message already stored; Del deletes one never downloaded
    (seed-3 §7), each at the next connection."""
    fred = world.local.add_user("fred")
    world.put_at_isp(mail("fred@a.test", n=1))
    collector = world.add_collector(leave_days=10, max_size_kb=1)
    assert (await world.run(collector)).ok
    world.put_at_isp(mail("fred@a.test", n=2) + b"w" * 70 + b"\r\n" * 1000)  # too big
    assert (await world.run(collector)).ok
    tab = world.local.db.read_sync(repo.uidls, collector)
    stored_key = next(k for k, row in tab.items() if row["stored"])
    big_key = next(k for k, row in tab.items() if row["disposition"] == "too_big")
    world.local.db.run_sync(repo.set_flags, collector, stored_key, get=True, dele=None)
    world.local.db.run_sync(repo.set_flags, collector, big_key, get=None, dele=True)
    result = await world.run(collector)
    assert result.ok, result.text
    assert len(world.inbox(fred)) == 2  # message 1 twice: the Get was honoured
    assert world.isp_count() == 1  # the big one deleted unread
    tab = world.local.db.read_sync(repo.uidls, collector)
    assert not tab[stored_key]["get_flag"]
    assert tab[big_key]["deleted"]
