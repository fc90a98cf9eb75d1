"""The SMTP listener on a real loopback socket, driven by smtplib and swaks.

The DeliveryAgent and Authenticator are the protocol-test fakes, so these tests
prove the wire side (framing, TLS, AUTH, pipelining through a real TCP stack), not
routing or storage.
"""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
import trustme
from twisted.internet import reactor, threads
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.ssl import CertificateOptions, PrivateCertificate

from tests.proto.smtp.fakes import FakeAuthenticator, FakeDelivery
from vpop3d.proto.smtp.server import SMTPListenerConfig, SMTPServerFactory

pytestmark = pytest.mark.network

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
# pytest-twisted has no type information; its decorator keeps the signature.
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)
MESSAGE = b"Subject: hello\r\nFrom: fred@a.test\r\n\r\nHello over a real socket.\r\n"


@dataclass
class Listener:
    port: int
    delivery: FakeDelivery
    ca: trustme.CA


def _tls() -> tuple[CertificateOptions, trustme.CA]:
    ca = trustme.CA()
    pem = ca.issue_cert("mail.a.test", "127.0.0.1").private_key_and_cert_chain_pem.bytes()
    private = PrivateCertificate.loadPEM(pem)
    options: CertificateOptions = private.options()
    return options, ca


async def _listen(**config: Any) -> tuple[Listener, IListeningPort]:
    options, ca = _tls()
    delivery = FakeDelivery(max_size=1_000_000)
    factory = SMTPServerFactory(
        SMTPListenerConfig(hostname="mail.a.test", **config),
        authenticator=FakeAuthenticator(),
        delivery=delivery,
        clock=reactor,
        tls=options,
    )
    endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    port: IListeningPort = await endpoint.listen(factory.listening_factory())
    return Listener(port.getHost().port, delivery, ca), port  # type: ignore[attr-defined]  # IPv4Address


async def _stop(port: IListeningPort) -> None:
    stopping = port.stopListening()
    if stopping is not None:
        await stopping


async def _in_thread(function: Callable[[], _T]) -> _T:
    result: _T = await threads.deferToThread(function)
    return result


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.check_hostname = False
    return context


@ensure_deferred
async def test_smtplib_plain_delivery():
    """smtplib delivers to a local user over plain SMTP; the body arrives unchanged."""
    listener, port = await _listen()
    try:

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
                return client.sendmail("bob@remote.test", ["fred@a.test", "nosuch@a.test"], MESSAGE)

        refused = await _in_thread(send)
        assert refused == {"nosuch@a.test": (550, b"5.1.1 Recipient not recognised")}
        [accepted] = listener.delivery.accepted
        assert accepted.body == MESSAGE
        assert accepted.context.peer_ip == "127.0.0.1"
    finally:
        await _stop(port)


@ensure_deferred
async def test_smtplib_starttls_and_login():
    """STARTTLS with a self-signed chain, then AUTH, then an authenticated relay."""
    listener, port = await _listen()
    try:

        def send() -> tuple[tuple[int, bytes], dict[str, tuple[int, bytes]]]:
            with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
                client.starttls(context=_client_context(listener.ca))
                login = client.login("fred", "secret")
                return login, client.sendmail("fred@a.test", ["x@remote.test"], MESSAGE)

        login, refused = await _in_thread(send)
        assert login[0] == 235
        assert refused == {}
        context = listener.delivery.accepted[0].context
        assert context.secure
        assert context.tls_description.startswith("TLSv1")
        assert context.principal is not None
    finally:
        await _stop(port)


@ensure_deferred
async def test_tls_required_listener_refuses_auth_before_starttls():
    """On a STARTTLS-required listener AUTH before TLS gets 530 5.7.0."""
    listener, port = await _listen(starttls="required", allow_plaintext_auth_without_tls=True)
    try:

        def probe() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
                client.ehlo("probe")
                before = client.docmd("AUTH", "PLAIN AGZyZWQAc2VjcmV0")
                client.starttls(context=_client_context(listener.ca))
                client.ehlo("probe")
                after = client.docmd("AUTH", "PLAIN AGZyZWQAc2VjcmV0")
                return before, after

        before, after = await _in_thread(probe)
        assert before == (530, b"5.7.0 Must issue a STARTTLS command first")
        assert after[0] == 235
    finally:
        await _stop(port)


@ensure_deferred
async def test_implicit_tls_listener():
    """An implicit-TLS listener (SMTPS, 465) works with smtplib.SMTP_SSL."""
    listener, port = await _listen(implicit_tls=True, name="smtps")
    try:

        def send() -> dict[str, tuple[int, bytes]]:
            context = _client_context(listener.ca)
            with smtplib.SMTP_SSL("127.0.0.1", listener.port, timeout=10, context=context) as c:
                c.login("fred", "secret")
                return c.sendmail("fred@a.test", ["kate@a.test"], MESSAGE)

        assert await _in_thread(send) == {}
        assert listener.delivery.accepted[0].context.listener == "smtps"
    finally:
        await _stop(port)


def _swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        "swaks",
        "--server",
        "127.0.0.1",
        "--port",
        str(port),
        "--ehlo",
        "swaks.test",
        "--from",
        "fred@a.test",
        "--timeout",
        "10",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")


@needs_swaks
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
@ensure_deferred
async def test_swaks_starttls_auth(mechanism: str):
    """swaks does STARTTLS and AUTH <mechanism> and relays to a remote address."""
    listener, port = await _listen()
    try:
        result = await _in_thread(
            lambda: _swaks(
                listener.port,
                "--to",
                "x@remote.test",
                "--tls",
                "--auth",
                mechanism,
                "--auth-user",
                "fred",
                "--auth-password",
                "secret",
            )
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "235 2.7.0 Authentication successful" in result.stdout
        assert "250 2.0.0 OK - queued as Q0001" in result.stdout
        assert listener.delivery.accepted[0].context.principal is not None
    finally:
        await _stop(port)


@needs_swaks
@ensure_deferred
async def test_swaks_pipelining_and_relay_refusal():
    """swaks with --pipeline: a remote recipient without AUTH is refused (no open relay)."""
    listener, port = await _listen()
    try:
        result = await _in_thread(
            lambda: _swaks(listener.port, "--to", "x@remote.test", "--pipeline")
        )
        assert result.returncode != 0
        assert "550 5.7.1 Relaying denied" in result.stdout
        assert listener.delivery.accepted == []
    finally:
        await _stop(port)


@needs_swaks
@ensure_deferred
async def test_swaks_wrong_password():
    """A wrong password over TLS gets 535 5.7.8 and nothing is sent."""
    listener, port = await _listen()
    try:
        result = await _in_thread(
            lambda: _swaks(
                listener.port,
                "--to",
                "x@remote.test",
                "--tls",
                "--auth",
                "PLAIN",
                "--auth-user",
                "fred",
                "--auth-password",
                "wrong",
            )
        )
        assert result.returncode != 0
        assert "535 5.7.8 Authentication credentials invalid" in result.stdout
    finally:
        await _stop(port)


@ensure_deferred
async def test_starttls_injection_over_a_real_socket():
    """A command sent with STARTTLS in one packet is never executed, before or after TLS."""
    listener, port = await _listen()
    try:

        def probe() -> tuple[bytes, bytes]:
            with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as raw:
                reader = raw.makefile("rb")
                reader.readline()  # greeting
                raw.sendall(b"EHLO c\r\n")
                while not reader.readline().startswith(b"250 "):
                    pass
                raw.sendall(b"STARTTLS\r\nHELP\r\n")
                ready = reader.readline()
                context = _client_context(listener.ca)
                with context.wrap_socket(raw, server_hostname="mail.a.test") as tls:
                    tls.sendall(b"NOOP\r\n")
                    first = tls.recv(4096)
                return ready, first

        ready, first = await _in_thread(probe)
    finally:
        await _stop(port)
    assert ready == b"220 2.0.0 Ready to start TLS\r\n"
    assert first == b"250 2.0.0 OK\r\n"
