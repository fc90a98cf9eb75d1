"""IMAP4rev2, BINARY and SEARCHRES end to end over the real store (imaplib, real socket)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.integration.test_imap_loopback import (
    HOST,
    deliver,
    ensure_deferred,
    in_thread,
    listen,
    login,
    message,
    snap,
    stop,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.network

ATTACHMENT = bytes(range(256)) * 40 + b"\x00end"


def _with_attachment() -> bytes:
    encoded = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    return (
        (
            f"From: a@remote.test\r\nTo: fred@{HOST}\r\nSubject: attached\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'
            "--zz\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n"
            "--zz\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + encoded
        + b"--zz--\r\n"
    )


@ensure_deferred
async def test_rev2_binary_and_searchres(stack: Stack) -> None:
    """ENABLE IMAP4rev2, SEARCH RETURN (SAVE), then FETCH $ BINARY gives the original bytes."""
    fred = stack.add_user("fred")
    await in_thread(lambda: deliver(stack, fred, message("plain")))
    await in_thread(lambda: deliver(stack, fred, _with_attachment()))
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            client = login(port)
            out: dict[str, Any] = {"caps": snap(client.capability())[1][0].split()}
            out["enable"] = snap(client.enable("IMAP4rev2"))
            out["enabled"] = snap(client.response("ENABLED"))
            out["select"] = snap(client.select("INBOX"))
            out["recent"] = snap(client.response("RECENT"))
            out["esearch"] = snap(client.search(None, "SUBJECT", "attached"))
            out["esearch_data"] = snap(client.response("ESEARCH"))
            out["save"] = snap(client.search(None, "RETURN", "(SAVE)", "SUBJECT", "attached"))
            out["size"] = snap(client.fetch("$", "(BINARY.SIZE[2])"))
            out["binary"] = snap(client.fetch("$", "(BINARY.PEEK[2])"))
            out["uid_binary"] = snap(client.uid("FETCH", "$", "(BINARY.PEEK[1])"))
            out["flags"] = snap(client.fetch("1:*", "(FLAGS)"))
            client.store("1", "+FLAGS.SILENT", "(\\Deleted)")
            out["status"] = snap(client.status("INBOX", "(MESSAGES DELETED)"))
            out["list"] = snap(client.list('""', "INBOX"))
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert {b"IMAP4rev2", b"BINARY", b"SEARCHRES"} <= set(got["caps"])
    assert got["enable"][0] == "OK"
    assert got["enabled"] == ("ENABLED", [b"IMAP4rev2"])
    assert got["select"][0] == "OK"
    assert got["recent"] == ("RECENT", [None])
    assert got["esearch"][0] == "OK"
    [esearch] = got["esearch_data"][1]
    assert esearch.startswith(b'(TAG "')
    assert esearch.endswith(b'") ALL 2')
    assert got["save"][0] == "OK"
    assert got["size"] == ("OK", [b"2 (BINARY.SIZE[2] %d)" % len(ATTACHMENT)])
    status, data = got["binary"]
    assert status == "OK"
    assert data[0][0] == b"2 (BINARY[2] ~{%d}" % len(ATTACHMENT)
    assert data[0][1] == ATTACHMENT
    status, data = got["uid_binary"]
    assert data[0][1] == b"See the file."
    assert got["flags"] == ("OK", [b"1 (FLAGS ())", b"2 (FLAGS ())"])
    assert got["status"] == ("OK", [b'"INBOX" (MESSAGES 2 DELETED 1)'])
    # imaplib keeps the LIST that rev2 SELECT sent (RFC 9051 §6.3.2) ahead of LIST's own.
    assert got["list"] == ("OK", [b'() "/" "INBOX"', b'(\\HasNoChildren) "/" "INBOX"'])
