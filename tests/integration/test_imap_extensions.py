"""SORT, THREAD, QUOTA and later extensions end to end over the real store (imaplib)."""

from __future__ import annotations

import imaplib
import re
import socket
import zlib
from typing import Any

import pytest

from tests.integration.test_imap_loopback import (
    deliver,
    ensure_deferred,
    in_thread,
    listen,
    login,
    message,
    snap,
    stop,
)
from tests.support.server import ServerProcess, add_user
from tests.support.stack import Stack

pytestmark = pytest.mark.network


@ensure_deferred
async def test_sort_and_thread_on_the_store(stack: Stack) -> None:
    """SORT and THREAD read the cached summaries; UID variants report UIDs."""
    fred = stack.add_user("fred")
    for subject in ("Zebra", "apple", "Re: Zebra"):
        await in_thread(lambda s=subject: deliver(stack, fred, message(s)))  # type: ignore[misc]
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            client = login(port)
            client.select("INBOX")
            out = {
                "sort": snap(client.sort("(SUBJECT)", "UTF-8", "ALL")),
                "uid_sort": snap(client.uid("SORT", "(REVERSE SUBJECT)", "UTF-8", "ALL")),
                "thread": snap(client.thread("ORDEREDSUBJECT", "UTF-8", "ALL")),
            }
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert got["sort"] == ("OK", [b"2 1 3"])
    assert got["uid_sort"] == ("OK", [b"1 3 2"])
    assert got["thread"] == ("OK", [b"(1 3)(2)"])


@ensure_deferred
async def test_quota_and_append_over_quota(stack: Stack) -> None:
    """GETQUOTAROOT reports usage over all folders; APPEND past the limit is OVERQUOTA."""
    fred = stack.add_user("fred", quota_kb=2)
    await in_thread(lambda: deliver(stack, fred, message("first")))
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            client = login(port)
            out: dict[str, Any] = {"root": snap(client.getquotaroot("INBOX"))}
            out["setquota"] = snap(client.setquota('""', "(STORAGE 100)"))
            out["append"] = snap(client.append("Sent", None, None, b"x" * 4000))
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert got["root"] == ("OK", [[b'"INBOX" ""'], [b'"" (STORAGE 1 2)']])
    assert got["setquota"][0] == "NO"
    assert got["append"] == ("NO", [b"[OVERQUOTA] Over quota"])


class _Raw:
    """A minimal IMAP client over a socket, optionally DEFLATE-compressed (RFC 4978)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.deflate: Any = None
        self.inflate: Any = None
        self.pending = b""
        self.read_until(b"\r\n")

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.pending:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.pending += self.inflate.decompress(data) if self.inflate else data
        end = self.pending.index(marker) + len(marker)
        out, self.pending = self.pending[:end], self.pending[end:]
        return out

    def command(self, tag: str, text: str) -> str:
        """Send one command; everything up to and including its tagged response."""
        data = f"{tag} {text}\r\n".encode()
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
        lines: list[bytes] = []
        while not lines or not lines[-1].startswith(f"{tag} ".encode()):
            lines.append(self.read_until(b"\r\n"))
        return b"".join(lines).decode()

    def start_compression(self) -> None:
        self.deflate = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)


@ensure_deferred
async def test_compress_and_qresync_on_the_store(stack: Stack) -> None:
    """Over DEFLATE, a QRESYNC client learns of expunges and flag changes since its MODSEQ."""
    fred = stack.add_user("fred")
    for n in range(3):
        await in_thread(lambda n=n: deliver(stack, fred, message(f"m{n}")))  # type: ignore[misc]
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, str]:
            raw = _Raw(port)
            out = {"login": raw.command("a1", "LOGIN fred secret")}
            out["compress"] = raw.command("a2", "COMPRESS DEFLATE")
            raw.start_compression()
            out["enable"] = raw.command("a3", "ENABLE QRESYNC")
            out["select"] = raw.command("a4", "SELECT INBOX")
            other = login(port)
            other.select("INBOX")
            other.store("1", "+FLAGS", "(\\Deleted)")
            other.expunge()
            other.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
            other.logout()
            out["noop"] = raw.command("a5", "NOOP")
            uidvalidity = re.search(r"UIDVALIDITY (\d+)", out["select"])
            modseq = re.search(r"HIGHESTMODSEQ (\d+)", out["select"])
            assert uidvalidity, out["select"]
            assert modseq, out["select"]
            known = f"{uidvalidity.group(1)} {modseq.group(1)}"
            out["reselect"] = raw.command("a6", f"EXAMINE INBOX (QRESYNC ({known}))")
            raw.command("a7", "LOGOUT")
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert "a2 OK DEFLATE active" in got["compress"]
    assert "* ENABLED QRESYNC" in got["enable"]
    assert "* VANISHED 1\r\n" in got["noop"]
    assert "* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (" in got["noop"]
    assert "* OK [CLOSED]" in got["reselect"]
    assert "* VANISHED (EARLIER) 1\r\n" in got["reselect"]
    assert "* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (" in got["reselect"]


def test_real_server_advertises_the_extensions(server: ServerProcess) -> None:
    """The twistd server's IMAP listener offers the new extensions and they answer."""
    add_user(server, "fred", "secret", quota_kb=1000)
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
    try:
        client.login("fred", "secret")
        caps = set(client.capability()[1][0].decode().split())
        for name in (
            "SORT",
            "THREAD=REFERENCES",
            "THREAD=ORDEREDSUBJECT",
            "QUOTA",
            "QRESYNC",
            "CONDSTORE",
            "UTF8=ACCEPT",
            "COMPRESS=DEFLATE",
            "LITERAL+",
        ):
            assert name in caps, name
        assert client.getquotaroot("INBOX")[1][1] == [b'"" (STORAGE 0 1000)']
        client.select("INBOX")
        assert client.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b""])
    finally:
        client.logout()
