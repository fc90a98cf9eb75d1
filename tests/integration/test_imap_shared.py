"""Folder sharing end to end: real sockets, real store, imapclient (features-b §4 check 7).

alice shares ``Shared`` with group ``sales`` (bob is a secondary member); bob finds it
under ``#users/alice/Shared``, reads it, changes flags as far as his rights go, and his
IDLE sees alice's APPEND; carol, outside the group, sees nothing.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from imapclient import IMAPClient  # type: ignore[import-untyped]  # no py.typed
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]
from sqlalchemy import Connection

from tests.integration.test_imap_loopback import in_thread, listen, stop
from tests.support.stack import Stack
from vpop3d.store import groups, users

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
SHARED = "#users/alice/Shared"
MESSAGE = b"From: alice@example.test\r\nSubject: team notes\r\n\r\nHello team.\r\n"


def _login(port: int, name: str) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    client.login(name, "secret")
    return client


def _people(stack: Stack) -> None:
    ids = {name: stack.add_user(name) for name in ("alice", "bob", "carol")}

    def setup(conn: Connection) -> None:
        sales = groups.add(conn, "sales")
        users.set_secondary_groups(conn, ids["bob"], [sales.id])

    stack.db.run_sync(setup)


def _refusal(call: Callable[[], Any]) -> str:
    try:
        call()
    except IMAPClientError as err:
        return str(err)
    return "no error"


@ensure_deferred
async def test_shared_folder_between_users(stack: Stack) -> None:
    """LIST, SELECT, FETCH, STORE within the rights, IDLE across users, carol sees nothing."""
    _people(stack)
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            out: dict[str, Any] = {}
            alice, bob, carol = (_login(port, n) for n in ("alice", "bob", "carol"))
            out["caps"] = alice.capabilities()
            out["namespace"] = alice.namespace()
            alice.create_folder("Shared")
            alice.append("Shared", MESSAGE)
            alice.setacl("Shared", "group:sales", "lr")
            out["acl"] = alice.getacl("Shared")
            out["list"] = bob.list_folders("", "#users/*")
            out["node"] = bob.select_folder("#users/alice")
            plain = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            plain.login("bob", "secret")
            out["myrights"] = plain.myrights(SHARED)
            plain.logout()
            out["ro"] = bob.select_folder(SHARED, readonly=True)
            out["fetch"] = bob.fetch([1], ["BODY[]", "FLAGS"])
            out["ro_store"] = _refusal(lambda: bob.add_flags([1], ["\\Seen"]))
            alice.setacl("Shared", "group:sales", "+s")
            out["rw"] = bob.select_folder(SHARED)
            out["noperm"] = _refusal(lambda: bob.add_flags([1], ["\\Flagged"]))
            out["seen"] = bob.add_flags([1], ["\\Seen"])
            alice.setacl("Shared", "group:sales", "+w")
            bob.select_folder(SHARED)
            out["flagged"] = bob.add_flags([1], ["\\Flagged"])
            out["alice_flags"] = alice.select_folder("Shared") and alice.get_flags([1])
            bob.idle()
            alice.append("Shared", MESSAGE)
            out["idle"] = bob.idle_check(timeout=10)
            bob.idle_done()
            out["carol_list"] = carol.list_folders()
            out["carol_select"] = _refusal(lambda: carol.select_folder(SHARED))
            for client in (alice, bob, carol):
                client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert {b"ACL", b"RIGHTS=TEXK"} <= {c.upper() for c in got["caps"]}
    assert got["namespace"].other == (("#users/", "/"),)
    assert (b"group:sales", b"lr") in got["acl"]
    listed = {name: flags for flags, _, name in got["list"]}
    assert set(listed) == {"#users/alice", SHARED}
    assert b"\\Noselect" not in listed["#users/alice"]
    assert got["node"][b"EXISTS"] == 0
    assert got["myrights"] == ("OK", [b'"#users/alice/Shared" lr'])
    assert b"READ-ONLY" in got["ro"]
    assert got["fetch"][1][b"BODY[]"] == MESSAGE
    assert b"\\Seen" not in got["fetch"][1][b"FLAGS"]  # EXAMINE: reading sets nothing
    assert "READ-ONLY" in got["ro_store"]
    assert got["rw"][b"READ-WRITE"] is True
    assert got["rw"][b"PERMANENTFLAGS"] == (b"\\Seen",)  # only what "s" allows
    assert "NOPERM" in got["noperm"]
    assert set(got["seen"][1]) - {b"\\Recent"} == {b"\\Seen"}
    assert set(got["flagged"][1]) - {b"\\Recent"} == {b"\\Seen", b"\\Flagged"}
    assert set(got["alice_flags"][1]) - {b"\\Recent"} == {
        b"\\Seen",
        b"\\Flagged",
    }  # \Seen is shared
    assert (2, b"EXISTS") in got["idle"]
    assert not any("#users" in name for _, _, name in got["carol_list"])
    assert "NONEXISTENT" in got["carol_select"]
