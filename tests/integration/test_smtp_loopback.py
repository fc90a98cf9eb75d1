"""SMTP end to end in one process: real socket, real Delivery, real store, real auth.

A loopback listener built by ``vpop3d.wiring_smtp`` (the same builder the server
uses) on the test's database; stdlib smtplib and swaks are the clients; what was
stored is read back from the database.
"""

from __future__ import annotations

import shutil
import smtplib
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
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort

from tests.support.stack import Stack
from vpop3d.app.auth import PLAINTEXT_EQUIVALENT
from vpop3d.config import ListenerSpec
from vpop3d.store import folders, messages, queue, users
from vpop3d.tls import context_factory, ensure_self_signed
from vpop3d.wiring_smtp import build_smtp_factory

pytestmark = pytest.mark.network

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
# pytest-twisted has no type information; its decorator keeps the signature.
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
BODY = b"Subject: loopback\r\nFrom: bob@remote.test\r\nTo: bill@example.test\r\n\r\nHi.\r\n"


@dataclass
class Loopback:
    port: int
    cafile: Path
    listening: IListeningPort

    async def stop(self) -> None:
        stopping = self.listening.stopListening()
        if stopping is not None:
            await stopping


async def listen(stack: Stack, *, starttls: str = "optional", name: str = "smtp") -> Loopback:
    tls_files = ensure_self_signed(stack.data_dir / "tls", "mail.example.test")
    context = stack.server_context(reactor, "mail.example.test", context_factory(tls_files))
    spec = ListenerSpec(
        name=name,
        protocol="smtp",
        role=name,
        port=0,
        interface="127.0.0.1",
        implicit_tls=False,
        starttls=cast(Any, starttls),
        require_auth=name == "submission",
    )
    factory = build_smtp_factory(cast(Any, context), spec)
    endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    port: IListeningPort = await endpoint.listen(factory)
    number: int = port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
    return Loopback(number, tls_files.certificate, port)


async def in_thread(function: Callable[[], _T]) -> _T:
    result: _T = await threads.deferToThread(function)
    return result


def client_tls(cafile: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False  # the certificate names mail.example.test
    return context


def inbox(stack: Stack, name: str) -> list[bytes]:
    def read(conn: Connection) -> list[bytes]:
        user = users.by_name(conn, name)
        assert user is not None
        folder = folders.inbox(conn, user.id)
        bodies = []
        for message in messages.in_folder(conn, folder.id):
            with stack.blobs.open(conn, message.blob_id) as handle:
                bodies.append(handle.read())
        return bodies

    return stack.db.read_sync(read)


@ensure_deferred
async def test_mail_reaches_the_inbox_with_trace_headers(stack: Stack):
    """Checks 14 and 17 over a socket: unknown local is 550, envelope decides, trace added."""
    stack.add_user("fred")
    loop = await listen(stack)
    try:

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", loop.port, timeout=20) as client:
                code, _ = client.ehlo("client.remote.test")
                assert code == 250
                return client.sendmail(
                    "bob@remote.test", ["fred@example.test", "nosuch@example.test"], BODY
                )

        refused = await in_thread(send)
    finally:
        await loop.stop()
    assert refused == {"nosuch@example.test": (550, b"5.1.1 Recipient not recognised")}
    [stored] = inbox(stack, "fred")
    assert stored.endswith(BODY)
    headers = stored.split(b"\r\n\r\n", 1)[0]
    assert stored.startswith(b"Received: from client.remote.test ([127.0.0.1])")
    assert b"Return-Path: <bob@remote.test>" in headers


@ensure_deferred
async def test_greeting_and_ehlo_keywords(stack: Stack):
    """Check 13: 220 ... ESMTP ..., EHLO with AUTH, SIZE, HELP and STARTTLS (cert present)."""
    loop = await listen(stack)
    try:

        def probe() -> tuple[bytes, bytes]:
            with smtplib.SMTP(timeout=20) as client:
                _, banner = client.connect("127.0.0.1", loop.port)
                _, ehlo = client.ehlo("probe.test")
                return banner, ehlo

        banner, ehlo = await in_thread(probe)
    finally:
        await loop.stop()
    assert banner == b"mail.example.test ESMTP server ready"
    keywords = ehlo.decode().splitlines()
    assert "STARTTLS" in keywords
    assert "HELP" in keywords
    assert any(line.startswith("SIZE ") for line in keywords)
    assert any(line.startswith("AUTH ") and "PLAIN" in line for line in keywords)


@ensure_deferred
async def test_starttls_with_first_run_certificate_then_auth_relay(stack: Stack):
    """STARTTLS with the self-signed first-run certificate, AUTH PLAIN, then relay is queued."""
    stack.add_user("fred")
    stack.put_setting("smtp.require_auth", True)
    loop = await listen(stack)
    try:

        def send() -> tuple[dict[str, tuple[int, bytes]], int]:
            with smtplib.SMTP("127.0.0.1", loop.port, timeout=20) as client:
                client.ehlo("client.test")
                before = 0
                try:
                    client.sendmail("fred@example.test", ["x@remote.test"], BODY)
                except smtplib.SMTPRecipientsRefused as exc:
                    before = exc.recipients["x@remote.test"][0]
                client.starttls(context=client_tls(loop.cafile))
                client.ehlo("client.test")
                client.login("fred", "secret")
                return client.sendmail("fred@example.test", ["x@remote.test"], BODY), before

        refused, before = await in_thread(send)
    finally:
        await loop.stop()
    assert before == 550  # no open relay without AUTH (check 15)
    assert refused == {}
    [entry] = stack.db.read_sync(queue.entries)
    assert entry.sender == "fred@example.test"
    assert [r[0] for r in entry.recipients] == ["x@remote.test"]


@ensure_deferred
async def test_auth_before_tls_refused_when_tls_required(stack: Stack):
    """A STARTTLS-required listener answers AUTH before TLS with 530 5.7.0."""
    stack.add_user("fred")
    loop = await listen(stack, starttls="required", name="submission")
    try:

        def probe() -> tuple[tuple[int, bytes], tuple[int, bytes], int]:
            with smtplib.SMTP("127.0.0.1", loop.port, timeout=20) as client:
                client.ehlo("c")
                before = client.docmd("AUTH", "PLAIN AGZyZWQAc2VjcmV0")
                mail = client.docmd("MAIL", "FROM:<fred@example.test>")
                client.starttls(context=client_tls(loop.cafile))
                client.ehlo("c")
                after = client.login("fred", "secret")
                return before, mail, after[0]

        before, mail, after = await in_thread(probe)
    finally:
        await loop.stop()
    assert before == (530, b"5.7.0 Must issue a STARTTLS command first")
    assert mail == (530, b"5.7.0 Must issue a STARTTLS command first")
    assert after == 235


def swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--ehlo", "swaks.test"]
    command += ["--from", "fred@example.test", "--timeout", "20", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")


@needs_swaks
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
@ensure_deferred
async def test_swaks_starttls_and_auth(stack: Stack, mechanism: str):
    """swaks: STARTTLS + AUTH PLAIN/LOGIN, and CRAM-MD5 once the admin enables it."""
    if mechanism == "CRAM-MD5":
        stack.put_setting(PLAINTEXT_EQUIVALENT, True)
    stack.add_user("fred")
    stack.add_user("kate")
    loop = await listen(stack)
    try:
        result = await in_thread(
            lambda: swaks(
                loop.port,
                "--to",
                "kate@example.test",
                "--tls",
                "--auth",
                mechanism,
                "--auth-user",
                "fred",
                "--auth-password",
                "secret",
            )
        )
    finally:
        await loop.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0 Authentication successful" in result.stdout
    assert "250 2.0.0 OK - queued as " in result.stdout
    [stored] = inbox(stack, "kate")
    headers = stored.split(b"\r\n\r\n", 1)[0]
    assert b"ESMTPSA" in headers or b"fred" in headers, headers


@needs_swaks
@ensure_deferred
async def test_swaks_cram_md5_not_offered_by_default(stack: Stack):
    """Without plaintext-equivalent secrets CRAM-MD5 is not available."""
    stack.add_user("fred")
    loop = await listen(stack)
    try:
        result = await in_thread(
            lambda: swaks(
                loop.port,
                "--to",
                "fred@example.test",
                "--tls",
                "--auth",
                "CRAM-MD5",
                "--auth-user",
                "fred",
                "--auth-password",
                "secret",
            )
        )
    finally:
        await loop.stop()
    assert result.returncode != 0
    auth_lines = [line for line in result.stdout.splitlines() if "250-AUTH " in line]
    assert auth_lines, result.stdout
    assert all("CRAM-MD5" not in line for line in auth_lines)


@ensure_deferred
async def test_large_message_streams_through(stack: Stack):
    """A 3 MB message (over the in-memory spool size) is stored intact."""
    stack.add_user("fred")
    body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 3000
    loop = await listen(stack)
    try:

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", loop.port, timeout=60) as client:
                return client.sendmail("bob@remote.test", ["fred@example.test"], body)

        refused = await in_thread(send)
    finally:
        await loop.stop()
    assert refused == {}
    [stored] = inbox(stack, "fred")
    assert stored.endswith(body)
