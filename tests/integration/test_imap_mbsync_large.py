"""mbsync keeps a 1,000-message mailbox in sync both ways (issue 6 "must show").

600 messages start on the server and 400 in the local Maildir. The first run
makes both sides hold all 1,000; a second run changes nothing on either side;
flags set on either side then travel to the other, and a last run is again a
no-op.
"""

from __future__ import annotations

import imaplib
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.integration.test_imap_loopback import ensure_deferred, in_thread, listen, stop
from tests.support.mbsync import write_mbsync_config
from tests.support.stack import Stack
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.store import folders
from vpop3d.store import messages as repo

pytestmark = [pytest.mark.network, pytest.mark.clients]

SERVER_SIDE = 600
LOCAL_SIDE = 400
_SEEN, _FLAGGED = 1, 4


def _message(n: int, origin: str) -> bytes:
    return (
        f"From: sender{n}@remote.test\r\nTo: fred@mail.example.test\r\n"
        f"Subject: {origin} message {n}\r\nMessage-ID: <{origin}-{n}@test>\r\n\r\n"
        f"Body {n} from the {origin}.\r\n"
    ).encode()


def _seed_server(stack: Stack, user_id: int) -> None:
    spools = []
    for n in range(SERVER_SIDE):
        spool = stack.spool(_message(n, "server"))
        spool.finish()
        spools.append(spool)

    def store(conn: Connection) -> None:
        for spool in spools:
            store_message(conn, stack.blobs, spool, [FolderTarget(user_id)])

    stack.db.run_sync(store)


def _seed_local(inbox: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True)
    for n in range(LOCAL_SIDE):
        (inbox / "new" / f"1700000000.{n}.laptop").write_bytes(_message(n, "laptop"))


def _local_state(inbox: Path) -> list[str]:
    return sorted(p.name for sub in ("new", "cur") for p in (inbox / sub).iterdir())


def _server_state(stack: Stack, user_id: int) -> tuple[int, int, list[tuple[int, int]]]:
    def read(conn: Connection) -> tuple[int, int, list[tuple[int, int]]]:
        inbox = folders.inbox(conn, user_id)
        rows = repo.in_folder(conn, inbox.id)
        return inbox.highest_modseq, inbox.uidnext, [(m.uid, m.flags) for m in rows]

    return stack.db.read_sync(read)


@ensure_deferred
async def test_mbsync_large_mailbox_both_ways(stack: Stack, tmp_path: Path) -> None:
    """1,000 messages sync both ways; re-runs change nothing; flags travel both ways."""
    fred = stack.add_user("fred")
    await in_thread(lambda: _seed_server(stack, fred))
    maildir = tmp_path / "maildir"
    inbox = maildir / "INBOX"
    _seed_local(inbox)
    config = tmp_path / "mbsyncrc"
    port, listening = await listen(stack)
    write_mbsync_config(config, port, maildir)

    def mbsync() -> float:
        started = time.monotonic()
        result = subprocess.run(
            ["mbsync", "-c", str(config), "sync"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return time.monotonic() - started

    def scenario() -> dict[str, object]:
        out: dict[str, object] = {"first": mbsync()}
        out["local_1"] = _local_state(inbox)
        out["server_1"] = _server_state(stack, fred)
        out["second"] = mbsync()
        out["local_2"] = _local_state(inbox)
        out["server_2"] = _server_state(stack, fred)
        # Flag ten messages on the server, mark ten local ones \Seen.
        client = imaplib.IMAP4("127.0.0.1", port, timeout=20)
        client.login("fred", "secret")
        client.select("INBOX")
        client.store("1:10", "+FLAGS", "(\\Flagged)")
        client.logout()
        for path in sorted((inbox / "new").iterdir())[:10]:
            path.rename(inbox / "cur" / (path.name.split(":2,")[0] + ":2,S"))
        out["third"] = mbsync()
        out["local_3"] = _local_state(inbox)
        out["server_3"] = _server_state(stack, fred)
        out["fourth"] = mbsync()
        out["local_4"] = _local_state(inbox)
        out["server_4"] = _server_state(stack, fred)
        return out

    try:
        got = await in_thread(scenario)
    finally:
        await stop(listening)
    total = SERVER_SIDE + LOCAL_SIDE
    local_1 = got["local_1"]
    assert isinstance(local_1, list)
    assert len(local_1) == total
    server_1 = got["server_1"]
    assert isinstance(server_1, tuple)
    assert len(server_1[2]) == total
    # The second run is a no-op on both sides.
    assert got["local_2"] == local_1
    assert got["server_2"] == server_1
    # Flags crossed over: \Flagged reached ten local files, \Seen ten server messages.
    local_3 = got["local_3"]
    assert isinstance(local_3, list)
    assert sum(1 for name in local_3 if "F" in name.split(":2,")[-1]) == 10
    server_3 = got["server_3"]
    assert isinstance(server_3, tuple)
    assert sum(1 for _, flags in server_3[2] if flags & _SEEN) == 10
    assert sum(1 for _, flags in server_3[2] if flags & _FLAGGED) == 10
    assert got["local_4"] == local_3
    assert got["server_4"] == server_3
    timings = [got[k] for k in ("first", "second", "third", "fourth")]
    assert all(isinstance(t, float) and t < 30 for t in timings), timings
