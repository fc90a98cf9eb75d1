"""CAPA (RFC 2449) and STLS (RFC 2595) per listener mode (seed-4 §6.1)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from twisted.internet.task import Clock

from tests.proto.pop3.harness import (
    FakeAuthenticator,
    Transcript,
    make_factory,
    sample_maildrops,
)
from vpop3d.proto.pop3.server import POP3ListenerConfig, POP3ServerFactory, STLSMode

TLS = object()  # stands in for a CertificateOptions; TLSStringTransport records it


def capa(t: Transcript) -> list[str]:
    lines = t.send("CAPA").split("\r\n")
    assert lines[0] == "+OK Capability list follows"
    assert lines[-2:] == [".", ""]
    return lines[1:-2]


def transcript(**config: Any) -> Transcript:
    t = Transcript(make_factory(maildrops=sample_maildrops(), **config))
    t.greeting()
    return t


def test_capa_without_certificate() -> None:
    """Without a certificate CAPA has no STLS; USER and SASL are listed."""
    assert capa(transcript()) == [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "USER",
        "SASL SCRAM-SHA-256 PLAIN LOGIN",
        "UTF8 USER",
        "IMPLEMENTATION vpop3d",
    ]


def test_capa_lists_stls_when_optional() -> None:
    """None/STLS mode with a certificate advertises STLS."""
    assert "STLS" in capa(transcript(tls_context=TLS))


def test_capa_lists_cram_md5_when_enabled() -> None:
    """CRAM-MD5 joins the SASL list when plaintext-equivalent secrets exist."""
    factory = make_factory(FakeAuthenticator(plaintext_equivalent=True))
    t = Transcript(factory)
    t.greeting()
    assert "SASL SCRAM-SHA-256 PLAIN LOGIN CRAM-MD5" in capa(t)


def test_capa_in_transaction_state() -> None:
    """CAPA works after login and keeps the AUTHORIZATION capabilities."""
    t = transcript()
    t.login()
    assert "USER" in capa(t)
    assert "TOP" in capa(t)


def test_stls_required_refuses_login_before_tls() -> None:
    """In STLS-required mode USER/PASS/APOP/AUTH before STLS get -ERR; CAPA works."""
    t = transcript(tls_context=TLS, stls=STLSMode.REQUIRED)
    lines = capa(t)
    assert "STLS" in lines
    assert "USER" not in lines
    assert not any(line.startswith("SASL") for line in lines)
    t.expect("USER fred", "-ERR Must issue a STLS command first")
    t.expect("PASS letmein", "-ERR Must issue a STLS command first")
    t.expect("APOP fred " + "0" * 32, "-ERR Must issue a STLS command first")
    t.expect("AUTH PLAIN", "-ERR Must issue a STLS command first")


def test_stls_then_login_in_required_mode() -> None:
    """After STLS the session is secure and USER/PASS logs in."""
    authenticator = FakeAuthenticator()
    factory = make_factory(
        authenticator, sample_maildrops(), tls_context=TLS, stls=STLSMode.REQUIRED
    )
    t = Transcript(factory)
    t.greeting()
    t.expect("STLS", "+OK Begin TLS negotiation")
    assert t.transport.tls_context is TLS
    assert "STLS" not in capa(t)
    assert t.login().startswith("+OK 3 messages")
    assert authenticator.contexts[0].secure


def test_stls_discards_pipelined_plaintext() -> None:
    """Commands sent after STLS in the same segment are dropped (RFC 2595 §4)."""
    t = transcript(tls_context=TLS)
    reply = t.send("STLS", "USER fred", "PASS letmein")
    assert reply == "+OK Begin TLS negotiation\r\n"
    t.expect("PASS letmein", "-ERR No user name given, send USER first")


def test_stls_forgets_user_given_before_tls() -> None:
    """A USER sent in plaintext does not survive STLS."""
    t = transcript(tls_context=TLS)
    t.send("USER fred")
    t.send("STLS")
    t.expect("PASS letmein", "-ERR No user name given, send USER first")


def test_stls_twice_and_without_certificate() -> None:
    """STLS is refused once TLS is on, and when no certificate is configured."""
    t = transcript(tls_context=TLS)
    t.send("STLS")
    t.expect("STLS", "-ERR Command not permitted when TLS active")
    plain = transcript()
    plain.expect("STLS", "-ERR STLS not available")
    off = transcript(tls_context=TLS, stls=STLSMode.OFF)
    off.expect("STLS", "-ERR STLS not available")


def test_implicit_tls_is_secure_from_the_start() -> None:
    """On an implicit-TLS listener logins are secure and STLS is not offered."""
    authenticator = FakeAuthenticator()
    factory = make_factory(
        authenticator,
        sample_maildrops(),
        tls_context=TLS,
        implicit_tls=True,
        stls=STLSMode.REQUIRED,
        allow_plaintext_without_tls=False,
    )
    t = Transcript(factory)
    t.greeting()
    assert "STLS" not in capa(t)
    assert t.login().startswith("+OK")
    assert authenticator.contexts[0].secure


def test_plaintext_refused_without_tls_when_configured() -> None:
    """With plaintext logins off, USER and AUTH PLAIN need TLS; SCRAM still works."""
    t = transcript(tls_context=TLS, allow_plaintext_without_tls=False)
    lines = capa(t)
    assert "USER" not in lines
    assert "SASL SCRAM-SHA-256" in lines
    t.expect("USER fred", "-ERR Plaintext authentication disallowed without TLS")
    plain = base64.b64encode(b"\x00fred\x00letmein").decode()
    t.expect(f"AUTH PLAIN {plain}", "-ERR Plaintext authentication disallowed without TLS")
    t.send("STLS")
    assert t.login().startswith("+OK")


def test_required_stls_without_certificate_is_a_config_error() -> None:
    """STLS required with no certificate is refused when the factory is built."""
    with pytest.raises(ValueError, match="STLS required"):
        make_factory(stls=STLSMode.REQUIRED)


def test_callable_config_applies_to_new_connections() -> None:
    """A config callable is read per connection, so admin changes need no restart."""
    current = {"max": 3}

    def config() -> POP3ListenerConfig:
        return POP3ListenerConfig(max_failed_logins=current["max"])

    factory = POP3ServerFactory(
        config, FakeAuthenticator(), sample_maildrops(), Clock(), make_challenge=lambda h: b"<x>"
    )
    first = Transcript(factory)
    current["max"] = 1
    second = Transcript(factory)
    for t in (first, second):
        t.send("USER fred")
        t.send("PASS wrong")
    assert not first.is_closed()
    assert second.is_closed()
