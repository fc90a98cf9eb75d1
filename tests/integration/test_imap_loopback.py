"""IMAP end to end in one process: real sockets, real store, real auth, imaplib/imapclient.

The listener is built by ``vpop3d.wiring_imap`` (the builder the server uses) on the
test's database. Spec seed-1 check 36: two sessions on one INBOX see each other's
expunges and new deliveries; APPEND to "Sent Items"; subscriptions survive
DELETE/re-CREATE.
"""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from imapclient import IMAPClient  # type: ignore[import-untyped]  # no py.typed
from sqlalchemy import Connection
from twisted.internet import reactor, threads
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock

from tests.support.mbsync import write_mbsync_config
from tests.support.stack import Stack
from vpop3d.app.imapmail import StoreMailStore
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.config import ListenerSpec
from vpop3d.ports import MailboxChanged, Principal
from vpop3d.store import folders
from vpop3d.tls import context_factory, ensure_self_signed
from vpop3d.wiring_imap import build_imap_factory
from vpop3d.wiring_smtp import build_smtp_factory

pytestmark = pytest.mark.network

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
HOST = "mail.example.test"


async def listen(
    stack: Stack, *, starttls: str = "off", implicit: bool = False
) -> tuple[int, IListeningPort]:
    tls = None
    if starttls != "off" or implicit:
        tls = context_factory(ensure_self_signed(stack.data_dir / "tls", HOST))
    context = stack.server_context(reactor, HOST, tls)
    spec = ListenerSpec(
        name="imaps" if implicit else "imap",
        protocol="imap",
        role="imaps" if implicit else "imap",
        port=0,
        interface="127.0.0.1",
        implicit_tls=implicit,
        starttls=cast(Any, "off" if implicit else starttls),
        require_auth=False,
    )
    factory = build_imap_factory(cast(Any, context), spec)
    if implicit:
        endpoint: Any = SSL4ServerEndpoint(reactor, 0, tls, interface="127.0.0.1")
    else:
        endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    port: IListeningPort = await endpoint.listen(factory)
    return port.getHost().port, port  # type: ignore[attr-defined]  # IPv4Address


def client_tls(stack: Stack) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(stack.data_dir / "tls" / "selfsigned.crt"))


async def stop(listening: IListeningPort) -> None:
    stopping = listening.stopListening()
    if stopping is not None:
        await stopping


async def in_thread(function: Callable[[], _T]) -> _T:
    result: _T = await threads.deferToThread(function)
    return result


def deliver(stack: Stack, user_id: int, body: bytes) -> None:
    """What SMTP delivery does: store in INBOX, commit, then publish (call from a thread)."""
    spool = stack.spool(body)
    spool.finish()

    def store(conn: Connection) -> tuple[int, int]:
        _, [row] = store_message(conn, stack.blobs, spool, [FolderTarget(user_id)])
        return row.folder_id, row.modseq

    folder_id, modseq = stack.db.run_sync(store)
    publish = stack.bus.publish
    threads.blockingCallFromThread(cast(Any, reactor), publish, MailboxChanged(folder_id, modseq))


def message(subject: str) -> bytes:
    return (
        f"From: a@remote.test\r\nTo: fred@{HOST}\r\nSubject: {subject}\r\n\r\nBody of {subject}\r\n"
    ).encode()


def snap(result: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    """Copy an imaplib result (it hands out lists it keeps appending to)."""
    return result[0], list(result[1])


def login(port: int) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    client.login("fred", "secret")
    return client


@ensure_deferred
async def test_check_36_two_sessions(stack: Stack) -> None:
    """A expunges, B sees EXPUNGE on NOOP; a delivery gives EXISTS in both (check 36)."""
    fred = stack.add_user("fred")
    for n in range(3):
        await in_thread(lambda n=n: deliver(stack, fred, message(f"m{n}")))  # type: ignore[misc]
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            a, b = login(port), login(port)
            out: dict[str, Any] = {
                "select_a": snap(a.select("INBOX")),
                "select_b": snap(b.select("INBOX")),
            }
            out["store"] = a.store("2", "+FLAGS", "(\\Deleted)")
            out["expunge"] = snap(a.expunge())
            b.noop()
            out["b_expunge"] = snap(b.response("EXPUNGE"))
            deliver(stack, fred, message("fresh"))
            a.noop()
            b.noop()
            out["a_exists"] = snap(a.response("EXISTS"))
            out["b_exists"] = snap(b.response("EXISTS"))
            out["b_fetch"] = b.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            a.logout()
            b.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert got["select_a"] == ("OK", [b"3"])
    assert got["select_b"] == ("OK", [b"3"])
    assert got["expunge"] == ("OK", [b"2"])
    assert got["b_expunge"] == ("EXPUNGE", [b"2"])
    # imaplib keeps SELECT's EXISTS; the second entry is the NOOP's new count (3 - 1 + 1).
    assert got["a_exists"] == ("EXISTS", [b"3", b"3"])
    assert got["b_exists"] == ("EXISTS", [b"3", b"3"])
    assert got["b_fetch"][1][0][1] == b"Subject: fresh\r\n\r\n"


@ensure_deferred
async def test_check_36_idle_sees_delivery(stack: Stack) -> None:
    """A session in IDLE (imapclient) is told of a new delivery at once."""
    fred = stack.add_user("fred")
    await in_thread(lambda: deliver(stack, fred, message("first")))
    port, listening = await listen(stack)
    try:

        def scenario() -> list[Any]:
            client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
            client.login("fred", "secret")
            client.select_folder("INBOX")
            client.idle()
            deliver(stack, fred, message("second"))
            responses: list[Any] = client.idle_check(timeout=10)
            client.idle_done()
            client.logout()
            return responses

        responses = await in_thread(scenario)
    finally:
        await stop(listening)
    assert (2, b"EXISTS") in responses


@ensure_deferred
async def test_check_36_append_and_subscriptions(stack: Stack) -> None:
    """APPEND to "Sent Items" works; SUBSCRIBE survives DELETE and re-CREATE (check 36)."""
    fred = stack.add_user("fred")
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
            client.login("fred", "secret")
            out: dict[str, Any] = {"folders": client.list_folders()}
            client.create_folder("Sent Items")
            out["append"] = client.append("Sent Items", message("sent copy"), flags=[b"\\Seen"])
            client.select_folder("Sent Items")
            out["fetch"] = client.fetch([1], ["FLAGS", "BODY.PEEK[]"])
            client.unselect_folder()
            client.subscribe_folder("Club")
            client.create_folder("Club")
            client.delete_folder("Club")
            out["lsub_deleted"] = client.list_sub_folders()
            client.create_folder("Club")
            out["lsub_recreated"] = client.list_sub_folders()
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    names = {name for _, _, name in got["folders"]}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} <= names
    special = {name: flags for flags, _, name in got["folders"]}
    assert b"\\Sent" in special["Sent"]
    assert b"[APPENDUID " in got["append"]
    assert set(got["fetch"][1][b"FLAGS"]) == {b"\\Seen", b"\\Recent"}
    assert got["fetch"][1][b"BODY[]"] == message("sent copy")
    assert [name for _, _, name in got["lsub_deleted"]] == ["Club"]
    assert [name for _, _, name in got["lsub_recreated"]] == ["Club"]
    stored = stack.db.read_sync(folders.by_name, fred, "Sent Items")
    assert stored is not None


@ensure_deferred
async def test_copy_move_search_fetch_structure(stack: Stack) -> None:
    """UID COPY and UID MOVE file messages; SEARCH and ENVELOPE work on stored mail."""
    fred = stack.add_user("fred")
    for subject in ("alpha", "beta", "gamma"):
        await in_thread(lambda s=subject: deliver(stack, fred, message(s)))  # type: ignore[misc]
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
            client.login("fred", "secret")
            client.select_folder("INBOX")
            out: dict[str, Any] = {"search": client.search(["SUBJECT", "beta"])}
            out["structure"] = client.fetch([1], ["BODYSTRUCTURE", "ENVELOPE", "RFC822.SIZE"])
            client.copy([1], "Archive")
            out["archive"] = client.folder_status("Archive", ["MESSAGES", "UIDNEXT"])
            out["move"] = client.move([2], "Trash")
            out["left"] = client.search(["ALL"])
            client.select_folder("Trash")
            out["trash"] = client.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert got["search"] == [2]
    envelope = got["structure"][1][b"ENVELOPE"]
    assert envelope.subject == b"alpha"
    assert got["structure"][1][b"RFC822.SIZE"] == len(message("alpha"))
    assert got["archive"] == {b"MESSAGES": 1, b"UIDNEXT": 2}
    assert got["left"] == [1, 3]
    assert next(iter(got["trash"].values()))[b"BODY[HEADER.FIELDS (SUBJECT)]"] == (
        b"Subject: beta\r\n\r\n"
    )


@ensure_deferred
async def test_folder_management_on_the_store(stack: Stack) -> None:
    """CREATE/RENAME/DELETE/STATUS/EXAMINE and \\Recent behave on the real store."""
    fred = stack.add_user("fred")
    for subject in ("one", "two"):
        await in_thread(lambda s=subject: deliver(stack, fred, message(s)))  # type: ignore[misc]
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            a, b = login(port), login(port)
            out: dict[str, Any] = {"status": a.status("INBOX", "(MESSAGES RECENT UNSEEN UIDNEXT)")}
            out["examine"] = b.select("INBOX", readonly=True)
            out["examine_recent"] = snap(b.response("RECENT"))
            out["select"] = a.select("INBOX")
            out["select_recent"] = snap(a.response("RECENT"))
            out["create"] = a.create("Projects/2026")
            out["list"] = a.list('""', "Projects*")
            out["delete_parent"] = a.delete("Projects")
            out["list_deleted"] = a.list('""', "Projects*")
            out["rename"] = a.rename("Projects/2026", "Work/2026")
            out["list_after"] = a.list('""', "*")
            out["keywords"] = a.append("Work/2026", "($Label1 \\Flagged)", None, message("kw"))
            b.select("Work/2026")
            out["kw_fetch"] = b.fetch("1", "(FLAGS)")
            out["uid_expunge"] = (
                a.uid("STORE", "1:2", "+FLAGS", "(\\Deleted)"),
                snap(a.uid("EXPUNGE", "2")),
            )
            out["rename_inbox"] = a.rename("INBOX", '"Old mail"')
            out["old_status"] = a.status('"Old mail"', "(MESSAGES)")
            out["inbox_status"] = a.status("INBOX", "(MESSAGES)")
            a.logout()
            b.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert got["status"] == ("OK", [b'"INBOX" (MESSAGES 2 RECENT 2 UNSEEN 2 UIDNEXT 3)'])
    assert got["examine"][0] == "OK"
    assert got["examine_recent"] == ("RECENT", [b"2"])  # EXAMINE shows but does not claim
    assert got["select_recent"] == ("RECENT", [b"2"])
    assert got["create"][0] == "OK"
    assert got["list"][1] == [
        b'(\\HasChildren) "/" "Projects"',
        b'(\\HasNoChildren) "/" "Projects/2026"',
    ]
    assert got["delete_parent"][0] == "OK"  # RFC 3501 §6.3.4: the name stays, \Noselect
    assert got["list_deleted"][1] == [
        b'(\\Noselect \\HasChildren) "/" "Projects"',
        b'(\\HasNoChildren) "/" "Projects/2026"',
    ]
    assert got["rename"][0] == "OK"
    assert b'(\\HasNoChildren) "/" "Work/2026"' in got["list_after"][1]
    assert got["keywords"][0] == "OK"
    assert b"$Label1" in got["kw_fetch"][1][0]
    assert b"\\Flagged" in got["kw_fetch"][1][0]
    assert got["uid_expunge"][1][0] == "OK"  # only UID 2 goes: "Old mail" gets UID 1 below
    assert got["rename_inbox"][0] == "OK"
    assert got["old_status"] == ("OK", [b'"Old mail" (MESSAGES 1)'])
    assert got["inbox_status"] == ("OK", [b'"INBOX" (MESSAGES 0)'])


@ensure_deferred
async def test_modseq_poll_sees_other_process(stack: Stack) -> None:
    """A change committed by another process (no local publish) reaches watchers by polling."""
    fred = stack.add_user("fred")
    store = StoreMailStore(stack.db, stack.blobs, stack.bus, clock=None)
    principal = Principal(fred, "fred", False, "fred@" + HOST)
    selected = await store.select(principal, "INBOX", read_only=False)
    calls: list[int] = []
    stop_watching = selected.watch(lambda: calls.append(1))
    await store.poller.poll()
    assert calls == []
    spool = stack.spool(message("elsewhere"))
    spool.finish()

    def other_process(conn: Connection) -> None:
        store_message(conn, stack.blobs, spool, [FolderTarget(fred)])

    await stack.db.write(other_process)  # committed, but nobody published
    await store.poller.poll()
    assert calls == [1]
    delta = await selected.refresh()
    assert [m.uid for m in delta.upserted] == [1]
    await store.poller.poll()
    assert calls == [1]  # nothing new: no second announcement
    stop_watching()
    selected.close()
    assert stack.bus.listener_count(selected.snapshot.folder_id) == 0


@ensure_deferred
async def test_starttls_required_then_login(stack: Stack) -> None:
    """With STARTTLS required, LOGIN is disabled until the handshake, then works."""
    stack.add_user("fred")
    port, listening = await listen(stack, starttls="required")
    try:

        def scenario() -> dict[str, Any]:
            client = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            out: dict[str, Any] = {"before": client.capabilities}
            try:
                client.login("fred", "secret")
            except imaplib.IMAP4.error as err:
                out["refused"] = str(err)
            client.starttls(client_tls(stack))
            out["after"] = client.capability()
            out["login"] = client.login("fred", "secret")
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert "LOGINDISABLED" in got["before"]
    assert "STARTTLS" in got["before"]
    assert "PRIVACYREQUIRED" in got["refused"]
    assert b"LOGINDISABLED" not in got["after"][1][0]
    assert got["login"][0] == "OK"


@ensure_deferred
async def test_implicit_tls_listener(stack: Stack) -> None:
    """On the implicit-TLS listener (993) plaintext login is allowed and STARTTLS absent."""
    stack.add_user("fred")
    port, listening = await listen(stack, implicit=True)
    try:

        def scenario() -> tuple[Any, ...]:
            client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(stack), timeout=20)
            caps = client.capabilities
            login = client.login("fred", "secret")
            client.logout()
            return caps, login

        caps, login = await in_thread(scenario)
    finally:
        await stop(listening)
    assert "STARTTLS" not in caps
    assert "AUTH=PLAIN" in caps
    assert login[0] == "OK"


@pytest.mark.clients
@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync is not installed")
@ensure_deferred
async def test_mbsync_pulls_and_pushes(stack: Stack, tmp_path: Path) -> None:
    """mbsync copies the INBOX to a Maildir and uploads a local message back."""
    fred = stack.add_user("fred")
    for n in range(5):
        await in_thread(lambda n=n: deliver(stack, fred, message(f"sync {n}")))  # type: ignore[misc]
    port, listening = await listen(stack)
    maildir = tmp_path / "maildir"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    write_mbsync_config(config, port, maildir)

    def run() -> list[subprocess.CompletedProcess[str]]:
        first = subprocess.run(
            ["mbsync", "-c", str(config), "sync"], capture_output=True, text=True, timeout=60
        )
        assert first.returncode == 0, first.stdout + first.stderr
        new = maildir / "INBOX" / "new"
        (new / "1700000000.local.host").write_bytes(message("from the laptop"))
        second = subprocess.run(
            ["mbsync", "-c", str(config), "sync"], capture_output=True, text=True, timeout=60
        )
        # Mark one synced message \Seen locally (Maildir "S" flag) and push it.
        inbox = maildir / "INBOX"
        synced = sorted(p for p in [*(inbox / "new").iterdir(), *(inbox / "cur").iterdir()]
                        if ",U=1" in p.name)  # fmt: skip
        target = synced[0]
        base = target.name.split(":2,")[0]
        target.rename(inbox / "cur" / f"{base}:2,S")
        third = subprocess.run(
            ["mbsync", "-c", str(config), "sync"], capture_output=True, text=True, timeout=60
        )
        fourth = subprocess.run(
            ["mbsync", "-c", str(config), "sync"], capture_output=True, text=True, timeout=60
        )
        return [first, second, third, fourth]

    try:
        runs = await in_thread(run)
    finally:
        await stop(listening)
    for result in runs:
        assert result.returncode == 0, result.stderr
    local = list((maildir / "INBOX" / "new").iterdir()) + list(
        (maildir / "INBOX" / "cur").iterdir()
    )
    assert len(local) == 6

    def count(conn: Connection) -> int:
        from vpop3d.store import messages as repo

        return repo.count(conn, folders.inbox(conn, fred).id)

    assert stack.db.read_sync(count) == 6

    def first_flags(conn: Connection) -> int:
        from vpop3d.store import messages as repo

        return repo.in_folder(conn, folders.inbox(conn, fred).id)[0].flags

    assert stack.db.read_sync(first_flags) & 1  # \Seen reached the server


def test_modseq_poller_runs_only_while_watched(stack: Stack) -> None:
    """The polling loop starts with the first watcher and stops with the last."""
    clock = Clock()
    store = StoreMailStore(stack.db, stack.blobs, stack.bus, clock=clock, poll_interval=5)
    first = store.poller.watch(7, 3)
    second = store.poller.watch(7, 3)
    assert clock.getDelayedCalls()
    first()
    assert clock.getDelayedCalls()
    second()
    assert not clock.getDelayedCalls()
    assert stack.bus.listener_count(7) == 0


@ensure_deferred
async def test_condstore_on_the_store(stack: Stack) -> None:
    """MODSEQ values come from the store; CHANGEDSINCE and UNCHANGEDSINCE work end to end."""
    fred = stack.add_user("fred")
    for subject in ("x", "y"):
        await in_thread(lambda s=subject: deliver(stack, fred, message(s)))  # type: ignore[misc]
    port, listening = await listen(stack)
    try:

        def scenario() -> dict[str, Any]:
            client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
            client.login("fred", "secret")
            out: dict[str, Any] = {"enable": client.enable("CONDSTORE")}
            out["select"] = client.select_folder("INBOX", readonly=False)
            out["before"] = client.fetch([1, 2], ["MODSEQ"])
            client.add_flags([2], [b"\\Flagged"])
            high = out["before"][2][b"MODSEQ"][0]
            out["changed"] = client.fetch([1, 2], ["FLAGS"], modifiers=[f"CHANGEDSINCE {high}"])
            out["status"] = client.folder_status("INBOX", ["HIGHESTMODSEQ"])
            client.logout()
            return out

        got = await in_thread(scenario)
    finally:
        await stop(listening)
    assert got["enable"] == [b"CONDSTORE"]
    assert got["select"][b"HIGHESTMODSEQ"] > 0
    before = {uid: data[b"MODSEQ"][0] for uid, data in got["before"].items()}
    assert before[2] > before[1]
    assert list(got["changed"]) == [2]
    assert got["changed"][2][b"MODSEQ"][0] > before[2]
    assert got["status"][b"HIGHESTMODSEQ"] == got["changed"][2][b"MODSEQ"][0]


@ensure_deferred
async def test_check_36_smtp_delivery_reaches_both_sessions(stack: Stack) -> None:
    """A real SMTP delivery produces '* n EXISTS' in two selected IMAP sessions (check 36)."""
    stack.add_user("fred")
    imap_port, imap_listening = await listen(stack)
    context = stack.server_context(reactor, HOST)
    spec = ListenerSpec("smtp", "smtp", "smtp", 0, "127.0.0.1", False, cast(Any, "off"), False)
    smtp_factory = build_smtp_factory(cast(Any, context), spec)
    endpoint: Any = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    smtp_listening: IListeningPort = await endpoint.listen(smtp_factory)
    smtp_port: int = smtp_listening.getHost().port  # type: ignore[attr-defined]  # IPv4Address
    try:

        def scenario() -> tuple[Any, Any, Any]:
            a, b = login(imap_port), login(imap_port)
            a.select("INBOX")
            b.select("INBOX")
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as client:
                refused = client.sendmail("bob@remote.test", ["fred@example.test"], message("hi"))
            a.noop()
            b.noop()
            seen = (snap(a.response("EXISTS")), snap(b.response("EXISTS")))
            a.logout()
            b.logout()
            return refused, seen[0], seen[1]

        refused, a_exists, b_exists = await in_thread(scenario)
    finally:
        await stop(imap_listening)
        await stop(smtp_listening)
    assert refused == {}
    assert a_exists == ("EXISTS", [b"0", b"1"])  # SELECT's count, then the NOOP's
    assert b_exists == ("EXISTS", [b"0", b"1"])
