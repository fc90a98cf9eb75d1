"""The collector wired into a real ``twistd vpop3d``: the CLI adds a collector and
asks the running server to collect now; the server downloads from an "ISP" POP3
mailbox (a second vpop3d store, served in this test process) into fred's INBOX."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.integration.test_collectors_loopback import isp_stack, mail
from tests.integration.test_pop3_loopback import deliver, inbox_ids, listen
from tests.support.server import ServerProcess, add_user
from vpop3d.store import collectors as repo
from vpop3d.store import folders, messages, users

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def fred_count(server: ServerProcess) -> int:
    def count(conn: Any) -> int:
        user = users.by_name(conn, "fred")
        assert user is not None
        return len(messages.pop3_listing(conn, folders.inbox(conn, user.id).id))

    return server.db.read_sync(count)


@ensure_deferred
async def test_cli_collect_now_on_running_server(server: ServerProcess, tmp_path: Path) -> None:
    """collector add / run / list / uidls / reset through the CLI against the live server."""
    add_user(server, "fred")
    isp = isp_stack(tmp_path)
    box = isp.add_user("box")
    for n in range(3):
        deliver(isp, box, mail("fred@a.test", n=n))
    loop = await listen(isp)
    try:
        server.cli(
            "collector", "add", "isp", "--server", "127.0.0.1", "--port", str(loop.port),
            "--username", "box", "--password", "secret", "--accepted-domains", "a.test",
            "--leave-days", "3",
        )  # fmt: skip
        server.cli("collector", "run", "isp")
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and fred_count(server) < 3:
            await deferLater(reactor, 0.5, lambda: None)
        assert fred_count(server) == 3
        listing = server.cli("collector", "list").stdout
        assert "isp" in listing
        assert "3 downloaded" in listing or "downloaded" in listing
        uidls = server.cli("collector", "uidls", "isp").stdout.splitlines()
        assert len(uidls) == 3
        assert all("\tstored\t" in line for line in uidls)
        assert len(inbox_ids(isp, box)) == 3  # left on the server for 3 days
        assert "3 UIDL(s) forgotten" in server.cli("collector", "reset", "isp").stdout
        row = server.db.read_sync(repo.by_name, "isp")
        assert row is not None
        assert server.db.read_sync(repo.uidls, row["id"]) == {}
    finally:
        await loop.stop()
        isp.db.stop()
