"""STARTTLS (RFC 3207) and implicit TLS: offering, requiring, resetting, injection."""

from __future__ import annotations

from typing import Any

import trustme
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    optionsForClientTLS,
)
from twisted.internet.task import Clock
from twisted.protocols.policies import WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import connectedServerAndClient

from tests.proto.smtp.fakes import (
    FakeDelivery,
    TLSStringTransport,
    Transcript,
    make_factory,
)
from vpop3d.proto.smtp.server import SMTPServerProtocol


def tls_options() -> tuple[CertificateOptions, trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("mail.a.test")
    pem = cert.private_key_and_cert_chain_pem.bytes()
    private = PrivateCertificate.loadPEM(pem)
    return private.options(), ca


def tls_transcript(delivery: FakeDelivery | None = None, **config: Any) -> Transcript:
    options, _ = tls_options()
    factory = make_factory(delivery or FakeDelivery(), tls=options, **config)
    transport = TLSStringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 4242))
    return Transcript(factory, transport=transport)


def test_starttls_offered_with_certificate():
    """With a certificate STARTTLS is in EHLO (check 13) and answers 220 2.0.0."""
    t = tls_transcript()
    assert "250-STARTTLS" in t.send("EHLO c")
    assert t.send("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
    assert isinstance(t.transport, TLSStringTransport)
    assert t.transport.tls_started


def test_commands_pipelined_after_starttls_are_discarded():
    """Plaintext sent after STARTTLS in the same packet is dropped (injection defence)."""
    delivery = FakeDelivery()
    t = tls_transcript(delivery)
    t.send("EHLO c")
    injected = b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<fred@a.test>\r\n"
    assert t.raw(injected) == ["220 2.0.0 Ready to start TLS"]
    assert delivery.senders == []
    # Session state was reset: the client must EHLO again inside TLS.
    assert t.send("MAIL FROM:<a@b.test>") == ["503 5.5.1 Send HELO/EHLO first"]


def test_after_tls_ehlo_changes():
    """Inside TLS, STARTTLS is gone from EHLO, PLAIN/LOGIN appear, and a 2nd STARTTLS is 503."""
    t = tls_transcript()
    t.send("EHLO c")
    t.send("STARTTLS")
    ehlo = t.send("EHLO c")
    assert "250-STARTTLS" not in ehlo
    assert "250-AUTH SCRAM-SHA-256 PLAIN LOGIN CRAM-MD5" in ehlo
    assert t.send("STARTTLS") == ["503 5.5.1 TLS already active"]
    assert t.protocol.session.secure


def test_tls_required_refuses_mail_and_auth_before_starttls():
    """With STARTTLS required, MAIL and AUTH get 530 5.7.0 until TLS (seed-1 §11.4)."""
    t = tls_transcript(starttls="required", allow_plaintext_auth_without_tls=True)
    ehlo = t.send("EHLO c")
    assert not any(line.startswith("250-AUTH") for line in ehlo)
    assert t.send("MAIL FROM:<a@b.test>") == ["530 5.7.0 Must issue a STARTTLS command first"]
    assert t.send("AUTH PLAIN AGZyZWQAc2VjcmV0") == [
        "530 5.7.0 Must issue a STARTTLS command first"
    ]
    t.send("STARTTLS")
    t.send("EHLO c")
    assert t.send("AUTH PLAIN AGZyZWQAc2VjcmV0") == ["235 2.7.0 Authentication successful"]


def test_starttls_unavailable_without_certificate():
    """Without a certificate STARTTLS is 502 5.5.1."""
    t = Transcript(make_factory(FakeDelivery()))
    t.send("EHLO c")
    assert t.send("STARTTLS") == ["502 5.5.1 STARTTLS not available"]


def test_starttls_off_is_not_offered():
    """A listener with starttls=off never offers it even with a certificate."""
    t = tls_transcript(starttls="off")
    assert "250-STARTTLS" not in t.send("EHLO c")
    assert t.send("STARTTLS") == ["502 5.5.1 STARTTLS not available"]


def test_starttls_inside_transaction_is_a_sequence_error():
    """STARTTLS during MAIL/RCPT gets 503 5.5.1."""
    t = tls_transcript()
    t.send("EHLO c")
    t.send("MAIL FROM:<a@b.test>")
    assert t.send("STARTTLS") == ["503 5.5.1 Bad sequence of commands"]


class _Collect(Protocol):
    def __init__(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


def test_implicit_tls_handshake_and_description():
    """An implicit-TLS listener (465) greets inside TLS and records protocol+cipher."""
    options, ca = tls_options()
    clock = Clock()
    smtp_factory = make_factory(FakeDelivery(), clock=clock, tls=options, implicit_tls=True)
    server_factory = smtp_factory.listening_factory()
    client_options = optionsForClientTLS(
        "mail.a.test", trustRoot=Certificate.loadPEM(ca.cert_pem.bytes())
    )
    collect = _Collect()
    client_factory = TLSMemoryBIOFactory(
        client_options, True, Factory.forProtocol(lambda: collect), clock=clock
    )
    addr = IPv4Address("TCP", "192.0.2.7", 4242)
    client, server, pump = connectedServerAndClient(
        lambda: server_factory.buildProtocol(addr),
        lambda: client_factory.buildProtocol(addr),
        clock=clock,
    )
    pump.flush()
    assert collect.data == b"220 mail.a.test ESMTP server ready\r\n"
    client.write(b"EHLO c\r\n")
    pump.flush()
    assert b"250-STARTTLS" not in collect.data
    assert b"PLAIN LOGIN" in collect.data
    smtp = getattr(server, "wrappedProtocol", None)
    assert isinstance(smtp, SMTPServerProtocol)
    description = smtp.session.tls_description
    assert description.startswith("TLSv1"), description
    assert smtp.session.context.secure


def test_tls_description_reaches_delivery_behind_a_protocol_wrapper():
    """Behind a wrapping factory (session logs) the TLS description still reaches accept()."""
    options, ca = tls_options()
    clock = Clock()
    delivery = FakeDelivery()
    smtp_factory = make_factory(delivery, clock=clock, tls=options, implicit_tls=True)
    server_factory = TLSMemoryBIOFactory(options, False, WrappingFactory(smtp_factory), clock=clock)
    client_options = optionsForClientTLS(
        "mail.a.test", trustRoot=Certificate.loadPEM(ca.cert_pem.bytes())
    )
    collect = _Collect()
    client_factory = TLSMemoryBIOFactory(
        client_options, True, Factory.forProtocol(lambda: collect), clock=clock
    )
    addr = IPv4Address("TCP", "192.0.2.7", 4242)
    client, _server, pump = connectedServerAndClient(
        lambda: server_factory.buildProtocol(addr),
        lambda: client_factory.buildProtocol(addr),
        clock=clock,
    )
    client.write(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<fred@a.test>\r\nDATA\r\nhi\r\n.\r\n")
    pump.flush()
    assert b"250 2.0.0 OK - queued as Q0001" in collect.data
    context = delivery.accepted[0].context
    assert context.secure
    assert context.tls_description.startswith("TLSv1"), context.tls_description
