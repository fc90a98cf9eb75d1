"""The ISP is a real ``twistd vpop3d`` process, SIGKILLed in the middle of a collector
run and started again: the re-run leaves every message in the local mailbox exactly
once and nothing at the ISP (issue 8: no loss, no duplicates)."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection, create_engine, delete
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from tests.integration.test_collectors_loopback import mail
from tests.support.database import _stamp
from tests.support.server import ServerProcess, add_user, start_server
from tests.support.stack import Stack
from vpop3d.app.access import AccessControl
from vpop3d.app.collectors import CollectorRunner
from vpop3d.app.delivery import Delivery
from vpop3d.app.routing import Router
from vpop3d.core.netrule import NetworkFacts
from vpop3d.store import blobs, domains, folders, messages, users
from vpop3d.store import collectors as repo
from vpop3d.store.tables import leases as lease_table
from vpop3d.store.tables import metadata

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
COUNT = 150


@pytest.fixture
def isp(tmp_path: Path) -> Iterator[ServerProcess]:
    """A second server process with its own SQLite database (ours may be PostgreSQL)."""
    directory = tmp_path / "isp"
    directory.mkdir()
    url = f"sqlite:///{directory / 'isp.sqlite3'}"
    engine = create_engine(url)
    metadata.create_all(engine)
    _stamp(engine)
    engine.dispose()
    process = start_server(directory, url)
    yield process
    process.stop()


def box_count(isp: ServerProcess) -> int:
    def count(conn: Connection) -> int:
        user = users.by_name(conn, "box")
        assert user is not None
        return len(messages.pop3_listing(conn, folders.inbox(conn, user.id).id))

    return isp.db.read_sync(count)


def expire_leases(conn: Connection) -> None:
    conn.execute(delete(lease_table))


def fill_isp(isp: ServerProcess) -> None:
    """COUNT messages for fred@a.test delivered to box@<isp domain> over SMTP."""
    default = isp.db.read_sync(domains.default)
    assert default is not None
    with smtplib.SMTP("127.0.0.1", isp.ports["smtp"], timeout=30) as client:
        for n in range(COUNT):
            body = mail("fred@a.test", n=n) + b"y" * 70 + b"\r\n" * 40
            client.sendmail("sender@remote.test", [f"box@{default.name}"], body)


@ensure_deferred
async def test_isp_killed_mid_download_then_rerun_gives_each_message_once(
    stack: Stack, isp: ServerProcess
) -> None:
    """SIGKILL the ISP while RETRs are flowing, restart it, collect again: all once."""
    fred = stack.add_user("fred")
    add_user(isp, "box")
    await threads.deferToThread(fill_isp, isp)
    assert box_count(isp) == COUNT
    router = Router(stack.db, reactor, settings=stack.settings, ttl=0.0)
    facts = NetworkFacts.of(["127.0.0.1"], ["127.0.0.0/8"])
    access = AccessControl(stack.settings, reactor, facts=facts)
    delivery = Delivery(
        stack.db, stack.blobs, router, access, stack.bus, stack.settings,
        clock=reactor, hostname="mail.example.test",
    )  # fmt: skip
    runner = CollectorRunner(
        stack.db, stack.blobs, delivery, router, stack.bus, stack.settings,
        reactor=reactor, hostname="mail.example.test", timeout=10.0,
    )  # fmt: skip
    collector = stack.db.run_sync(
        repo.add, "isp", server="127.0.0.1", port=isp.ports["pop3"], username="box",
        password="secret", accepted_domains="a.test",
    )  # fmt: skip

    def stored() -> int:
        def count(conn: Connection) -> int:
            return len(messages.in_folder(conn, folders.inbox(conn, fred).id))

        return stack.db.read_sync(count)

    first = runner.run(collector)
    while stored() < 20 and not first.called:
        await deferLater(reactor, 0.02, lambda: None)
    isp.kill()
    result = await first
    assert not result.ok, "the run should have been cut off"
    partial = stored()
    assert 20 <= partial < COUNT
    isp.start()
    # The killed ISP still holds its mailbox lease: the collector says so and stores nothing.
    result = await runner.run(collector)
    assert "[IN-USE]" in result.text
    isp.db.run_sync(expire_leases)  # what 120 s of waiting would do
    result = await runner.run(collector)
    assert result.ok, result.text

    def read(conn: Connection) -> list[bytes]:
        rows = messages.in_folder(conn, folders.inbox(conn, fred).id)
        return [blobs.read_bytes(conn, stack.blobs, row.blob_id) for row in rows]

    bodies = stack.db.read_sync(read)
    subjects = sorted(b.split(b"Subject: ")[1].split(b"\r\n")[0] for b in bodies)
    assert subjects == sorted(f"message {n}".encode() for n in range(COUNT))
    assert box_count(isp) == 0
