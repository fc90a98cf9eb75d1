"""POP3 end to end in one process: real sockets, real store, real auth, real clients.

Listeners are built by ``vpop3d.wiring_pop3`` (the builder the server uses) on the
test's database, with the first-run self-signed certificate. Clients: stdlib
poplib, curl and fetchmail. Spec seed-1 checks 8-12 and seed-4 POP3 checks 5-8.
"""

from __future__ import annotations

import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection
from twisted.internet import reactor, threads
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort

from tests.support.stack import Stack
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.config import ListenerSpec
from vpop3d.context import ServerContext
from vpop3d.store import folders, messages
from vpop3d.tls import context_factory, ensure_self_signed
from vpop3d.wiring_pop3 import build_pop3_factory

pytestmark = pytest.mark.network

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
HOST = "mail.example.test"


@dataclass
class Loopback:
    port: int
    cafile: Path
    listening: IListeningPort

    async def stop(self) -> None:
        stopping = self.listening.stopListening()
        if stopping is not None:
            await stopping


def make_context(stack: Stack) -> tuple[ServerContext, Path]:
    files = ensure_self_signed(stack.data_dir / "tls", HOST)
    context = stack.server_context(reactor, HOST, context_factory(files))
    return context, files.certificate


async def listen(stack: Stack, *, starttls: str = "optional", implicit: bool = False) -> Loopback:
    context, cafile = make_context(stack)
    spec = ListenerSpec(
        name="pop3s" if implicit else "pop3",
        protocol="pop3",
        role="pop3s" if implicit else "pop3",
        port=0,
        interface="127.0.0.1",
        implicit_tls=implicit,
        starttls=cast(Any, "off" if implicit else starttls),
        require_auth=False,
    )
    factory = build_pop3_factory(cast(Any, context), spec)
    if implicit:
        endpoint: Any = SSL4ServerEndpoint(reactor, 0, context.tls, interface="127.0.0.1")
    else:
        endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    port: IListeningPort = await endpoint.listen(factory)
    number: int = port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
    return Loopback(number, cafile, port)


async def in_thread(function: Callable[[], _T]) -> _T:
    result: _T = await threads.deferToThread(function)
    return result


def client_tls(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))  # the certificate names 127.0.0.1


def deliver(stack: Stack, user_id: int, body: bytes) -> int:
    spool = stack.spool(body)

    def store(conn: Connection) -> int:
        _, [row] = store_message(conn, stack.blobs, spool, [FolderTarget(user_id)])
        return row.id

    return stack.db.run_sync(store)


def inbox_ids(stack: Stack, user_id: int) -> list[int]:
    def listing(conn: Connection) -> list[int]:
        return [mid for mid, _, _ in messages.pop3_listing(conn, folders.inbox(conn, user_id).id)]

    return stack.db.read_sync(listing)


def message(number: int, lines: int = 3) -> bytes:
    body = b"".join(b"line %d of message %d\r\n" % (n, number) for n in range(lines))
    return b"Subject: test %d\r\nFrom: a@remote.test\r\n\r\n.leading dot\r\n" % number + body


def login(port: int, user: str = "fred", password: str = "secret") -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", port, timeout=20)
    client.user(user)
    client.pass_(password)
    return client


# ----------------------------------------------------------------- seed-1 checks 8-12


@ensure_deferred
async def test_check_8_basic_session(stack: Stack) -> None:
    """USER/PASS, STAT, LIST, UIDL, RETR, DELE, QUIT per RFC 1939 with the manual's texts."""
    fred = stack.add_user("fred")
    bodies = [message(1), message(2, 500)]
    for body in bodies:
        deliver(stack, fred, body)
    loop = await listen(stack)
    try:

        def session() -> dict[str, Any]:
            client = poplib.POP3("127.0.0.1", loop.port, timeout=20)
            out: dict[str, Any] = {"welcome": client.getwelcome()}
            out["user"] = client.user("fred")
            out["pass"] = client.pass_("secret")
            out["stat"] = client.stat()
            out["list"] = client.list()
            out["uidl"] = client.uidl()
            out["retr"] = client.retr(2)
            out["top"] = client.top(1, 0)
            out["dele"] = client.dele(1)
            out["quit"] = client.quit()
            return out

        got = await in_thread(session)
    finally:
        await loop.stop()
    sizes = [len(body) for body in bodies]
    assert got["welcome"] == b"+OK POP3 server ready"
    assert got["user"] == b"+OK Enter password"
    assert got["pass"] == b"+OK 2 messages (%d octets)" % sum(sizes)
    assert got["stat"] == (2, sum(sizes))
    assert got["list"][0] == b"+OK 2 messages (%d octets)" % sum(sizes)
    assert got["list"][1] == [b"1 %d" % sizes[0], b"2 %d" % sizes[1]]
    assert len(got["uidl"][1]) == 2
    response, lines, _ = got["retr"]
    assert response == b"+OK %d octets" % sizes[1]
    assert b"\r\n".join(lines) + b"\r\n" == bodies[1]  # poplib undoes the dot-stuffing
    assert got["top"][1] == [b"Subject: test 1", b"From: a@remote.test", b""]
    assert got["dele"] == b"+OK message 1 deleted"
    assert got["quit"] == b"+OK signing off"
    assert len(inbox_ids(stack, fred)) == 1


@ensure_deferred
async def test_check_8_login_with_full_address(stack: Stack) -> None:
    """username@localdomain logs in as the user too."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    loop = await listen(stack)
    try:
        count = await in_thread(lambda: login(loop.port, "fred@example.test").stat()[0])
    finally:
        await loop.stop()
    assert count == 1


@ensure_deferred
async def test_check_9_uidl_stable_and_never_reused(stack: Stack) -> None:
    """UIDLs are identical across sessions; after DELE+QUIT a new message gets a new one."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    deliver(stack, fred, message(2))
    loop = await listen(stack)
    try:

        def uidls() -> list[bytes]:
            client = login(loop.port)
            listing = client.uidl()[1]
            client.quit()
            return [line.split()[1] for line in listing]

        first = await in_thread(uidls)
        assert await in_thread(uidls) == first

        def delete_first() -> None:
            client = login(loop.port)
            client.dele(1)
            client.quit()

        await in_thread(delete_first)
        deliver(stack, fred, message(3))
        after = await in_thread(uidls)
    finally:
        await loop.stop()
    assert after[0] == first[1]
    assert after[1] not in first


@ensure_deferred
async def test_check_10_deferred_delete(stack: Stack) -> None:
    """DELE then a dropped connection keeps the message; DELE + QUIT removes it."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    loop = await listen(stack)
    try:

        def dele_and_drop() -> None:
            client = login(loop.port)
            client.dele(1)
            client.sock.shutdown(socket.SHUT_RDWR)
            client.close()

        await in_thread(dele_and_drop)

        def dele_and_quit() -> tuple[int, bytes]:
            client = login(loop.port)  # works: the dropped session released its lock
            count = client.stat()[0]
            client.dele(1)
            return count, client.quit()

        count, quit_reply = await retry_in_use(dele_and_quit)
    finally:
        await loop.stop()
    assert count == 1
    assert quit_reply == b"+OK signing off"
    assert inbox_ids(stack, fred) == []


async def retry_in_use(function: Callable[[], _T]) -> _T:
    """Run ``function`` in a thread, retrying while the previous session's lock lingers.

    A dropped connection is noticed by the server a moment later; the lease is then
    released in a database transaction.
    """
    from twisted.internet.task import deferLater

    for _ in range(100):
        try:
            return await in_thread(function)
        except poplib.error_proto as exc:
            if b"IN-USE" not in exc.args[0]:
                raise
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("maildrop stayed locked")


@ensure_deferred
async def test_check_11_exclusive_lock(stack: Stack) -> None:
    """While A is logged in, B gets -ERR [IN-USE]; after A quits, B logs in."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    loop = await listen(stack)
    try:
        first = await in_thread(lambda: login(loop.port))

        def second_login() -> bytes:
            with pytest.raises(poplib.error_proto) as refused:
                login(loop.port)
            return cast(bytes, refused.value.args[0])

        refusal = await in_thread(second_login)
        await in_thread(first.quit)
        count = await retry_in_use(lambda: login(loop.port).stat()[0])
    finally:
        await loop.stop()
    assert refusal.startswith(b"-ERR [IN-USE]")
    assert count == 1


@ensure_deferred
async def test_check_12_snapshot_hides_smtp_delivery(stack: Stack) -> None:
    """A message delivered by SMTP during the session appears only after re-login."""
    from vpop3d.wiring_smtp import build_smtp_factory

    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    loop = await listen(stack)
    context, _ = make_context(stack)
    smtp_spec = ListenerSpec("smtp", "smtp", "smtp", 0, "127.0.0.1", False, "optional", False)
    smtp_port: IListeningPort = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        build_smtp_factory(cast(Any, context), smtp_spec)
    )
    smtp_number: int = smtp_port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
    try:
        client = await in_thread(lambda: login(loop.port))

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", smtp_number, timeout=20) as smtp:
                smtp.sendmail("a@remote.test", ["fred@example.test"], message(2))

        await in_thread(send)
        during = await in_thread(client.stat)
        await in_thread(client.quit)
        after = await retry_in_use(lambda: login(loop.port).stat())
    finally:
        await loop.stop()
        stopping = smtp_port.stopListening()
        if stopping is not None:
            await stopping
    assert during[0] == 1
    assert after[0] == 2


# ----------------------------------------------------------------- TLS (seed-4 §6.1)


@ensure_deferred
async def test_stls_optional_with_first_run_certificate(stack: Stack) -> None:
    """CAPA lists STLS; STLS verifies against the self-signed certificate; plain login works."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    loop = await listen(stack)
    try:

        def tls_session() -> tuple[dict[str, list[str]], int, str]:
            client = poplib.POP3("127.0.0.1", loop.port, timeout=20)
            capabilities = client.capa()
            client.stls(client_tls(loop.cafile))
            client.user("fred")
            client.pass_("secret")
            count = client.stat()[0]
            version = cast(ssl.SSLSocket, client.sock).version() or ""
            client.quit()
            return capabilities, count, version

        capabilities, count, version = await in_thread(tls_session)
        plain = await retry_in_use(lambda: login(loop.port).stat()[0])
    finally:
        await loop.stop()
    assert "STLS" in capabilities
    assert count == 1
    assert version.startswith("TLSv1.")
    assert plain == 1


@ensure_deferred
async def test_stls_required_refuses_user_before_tls(stack: Stack) -> None:
    """With STLS required, USER before STLS gets -ERR and the login after STLS works."""
    stack.add_user("fred")
    loop = await listen(stack, starttls="required")
    try:

        def session() -> tuple[bytes, bytes]:
            client = poplib.POP3("127.0.0.1", loop.port, timeout=20)
            with pytest.raises(poplib.error_proto) as refused:
                client.user("fred")
            client.stls(client_tls(loop.cafile))
            client.user("fred")
            reply = client.pass_("secret")
            client.quit()
            return cast(bytes, refused.value.args[0]), reply

        refusal, reply = await in_thread(session)
    finally:
        await loop.stop()
    assert refusal == b"-ERR Must issue a STLS command first"
    assert reply == b"+OK 0 messages (0 octets)"


@ensure_deferred
async def test_implicit_tls_port(stack: Stack) -> None:
    """The 995-style listener speaks TLS at once; a plaintext client gets no +OK."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    loop = await listen(stack, implicit=True)
    try:

        def tls_login() -> int:
            client = poplib.POP3_SSL("127.0.0.1", loop.port, context=client_tls(loop.cafile))
            client.user("fred")
            client.pass_("secret")
            count = client.stat()[0]
            client.quit()
            return count

        count = await in_thread(tls_login)

        def plaintext_greeting() -> bytes:
            with socket.create_connection(("127.0.0.1", loop.port), timeout=2) as sock:
                try:
                    return sock.recv(100)
                except TimeoutError:
                    return b""

        greeting = await in_thread(plaintext_greeting)
    finally:
        await loop.stop()
    assert count == 1
    assert not greeting.startswith(b"+OK")


@ensure_deferred
async def test_three_failed_logins_close_the_connection(stack: Stack) -> None:
    """The third wrong PASS closes the TCP connection (seed-4 POP3 check 7)."""
    stack.add_user("fred")
    loop = await listen(stack)
    try:

        def hammer() -> bytes:
            client = poplib.POP3("127.0.0.1", loop.port, timeout=20)
            for _ in range(3):
                client.user("fred")
                with pytest.raises(poplib.error_proto):
                    client.pass_("wrong")
            return client.sock.recv(10)

        after = await in_thread(hammer)
    finally:
        await loop.stop()
    assert after == b""


@ensure_deferred
async def test_hold_instead_of_delete(stack: Stack) -> None:
    """Hold on: after DELE 1 + QUIT, STAT is one lower but the message is kept, held."""
    fred = stack.add_user("fred")
    first = deliver(stack, fred, message(1))
    deliver(stack, fred, message(2))
    stack.put_setting("pop3.hold_instead_of_delete", True)
    loop = await listen(stack)
    try:

        def dele_quit() -> None:
            client = login(loop.port)
            client.dele(1)
            client.quit()

        await in_thread(dele_quit)
        count = await retry_in_use(lambda: login(loop.port).stat()[0])
    finally:
        await loop.stop()
    assert count == 1
    row = stack.db.read_sync(messages.by_id, first)
    assert row is not None
    assert row.held


# ----------------------------------------------------------------- real clients


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, HOME=str(home))
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=environment)


@pytest.mark.clients
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@ensure_deferred
async def test_curl_pop3_and_pop3s(stack: Stack, tmp_path: Path) -> None:
    """curl lists and retrieves over pop3:// (with STLS) and pop3s:// (implicit TLS)."""
    fred = stack.add_user("fred")
    deliver(stack, fred, message(1))
    plain = await listen(stack)
    implicit = await listen(stack, implicit=True)
    try:
        listing = await in_thread(
            lambda: run(
                ["curl", "-sS", "-u", "fred:secret", f"pop3://127.0.0.1:{plain.port}/"],
                tmp_path,
            )
        )
        stls = await in_thread(
            lambda: run(
                [
                    "curl",
                    "-sS",
                    "--ssl-reqd",
                    "--cacert",
                    str(plain.cafile),
                    "-u",
                    "fred:secret",
                    "-o",
                    str(tmp_path / "stls.eml"),
                    f"pop3://127.0.0.1:{plain.port}/1",
                ],
                tmp_path,
            )
        )
        secure = await retry_curl(
            [
                "curl",
                "-sS",
                "--cacert",
                str(implicit.cafile),
                "-u",
                "fred:secret",
                "-o",
                str(tmp_path / "pop3s.eml"),
                f"pop3s://127.0.0.1:{implicit.port}/1",
            ],
            tmp_path,
        )
    finally:
        await plain.stop()
        await implicit.stop()
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == ["1", str(len(message(1)))]
    assert stls.returncode == 0, stls.stderr
    assert (tmp_path / "stls.eml").read_bytes() == message(1)  # un-stuffed, CRLF
    assert secure.returncode == 0
    assert (tmp_path / "pop3s.eml").read_bytes() == message(1)


async def retry_curl(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """curl until the previous session's lock is gone (curl does not show -ERR texts)."""
    from twisted.internet.task import deferLater

    errors = ""
    for _ in range(50):
        result = await in_thread(lambda: run(args, home))
        if result.returncode == 0:
            return result
        errors = result.stderr
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(errors)


def fetchmail_rc(home: Path, port: int, cafile: Path, mailbox: Path, *, keep: bool = True) -> Path:
    """A fetchmail run-control file: remember UIDLs, verify TLS, keep or delete."""
    rc = home / ".fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll {HOST} via 127.0.0.1 service {port} protocol pop3 uidl\n"
        "  user fred password secret is fred here\n"
        f"  sslcertfile {cafile} sslcertck sslcommonname {HOST}\n"
        f"  {'keep' if keep else 'nokeep'}\n"
        f"  mda \"/bin/sh -c 'cat >> {mailbox}'\"\n"
    )
    rc.chmod(0o600)
    return rc


def fetchmail(home: Path, rc: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [
            "fetchmail",
            "-f",
            str(rc),
            "--idfile",
            str(home / ".fetchids"),
            "--pidfile",
            str(home / "fetchmail.pid"),
            "--nosyslog",
            "-v",
        ],
        home,
    )


@pytest.mark.clients
@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")
@ensure_deferred
async def test_fetchmail_keep_downloads_each_message_once(stack: Stack, tmp_path: Path) -> None:
    """fetchmail with keep+uidl run twice downloads each message once (over STLS)."""
    fred = stack.add_user("fred")
    for number in range(3):
        deliver(stack, fred, message(number))
    loop = await listen(stack)
    mailbox = tmp_path / "mbox"
    rc = fetchmail_rc(tmp_path, loop.port, loop.cafile, mailbox)
    try:
        first = await in_thread(lambda: fetchmail(tmp_path, rc))
        assert first.returncode == 0, first.stdout + first.stderr
        after_first = mailbox.read_bytes().count(b"Subject: test ")
        second = await in_thread(lambda: fetchmail(tmp_path, rc))
        after_second = mailbox.read_bytes().count(b"Subject: test ")
        deliver(stack, fred, message(7))
        third = await in_thread(lambda: fetchmail(tmp_path, rc))
    finally:
        await loop.stop()
    assert first.returncode == 0, first.stdout + first.stderr
    assert after_first == 3
    assert second.returncode == 1, second.stdout + second.stderr  # 1: no new mail
    assert after_second == 3
    assert third.returncode == 0, third.stdout + third.stderr
    assert mailbox.read_bytes().count(b"Subject: test ") == 4
    assert len(inbox_ids(stack, fred)) == 4  # keep: nothing deleted on the server
    assert "STLS" in first.stdout + first.stderr


@pytest.mark.clients
@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")
@ensure_deferred
async def test_fetchmail_without_keep_deletes_on_the_server(stack: Stack, tmp_path: Path) -> None:
    """fetchmail's default (DELE each message, then QUIT) empties the server INBOX."""
    fred = stack.add_user("fred")
    bodies = [message(number, 50) for number in range(3)]
    for body in bodies:
        deliver(stack, fred, body)
    loop = await listen(stack)
    mailbox = tmp_path / "mbox"
    rc = fetchmail_rc(tmp_path, loop.port, loop.cafile, mailbox, keep=False)
    try:
        result = await in_thread(lambda: fetchmail(tmp_path, rc))
    finally:
        await loop.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert inbox_ids(stack, fred) == []
    stored = mailbox.read_bytes()
    assert stored.count(b"Subject: test ") == 3
    assert b"\n.leading dot\n" in stored.replace(b"\r\n", b"\n")  # un-stuffed


@ensure_deferred
async def test_ip_access_rules_refuse_at_connect(stack: Stack) -> None:
    """A Block rule for the client's address refuses the connection with -ERR (seed-4 §15)."""
    stack.add_user("fred")
    stack.put_setting("pop3.access_rules", [{"allow": False, "type": "any"}])
    loop = await listen(stack)
    try:

        def greeting() -> bytes:
            with socket.create_connection(("127.0.0.1", loop.port), timeout=20) as sock:
                return sock.makefile("rb").read()

        refused = await in_thread(greeting)
    finally:
        await loop.stop()
    assert refused == b"-ERR Access denied\r\n"
