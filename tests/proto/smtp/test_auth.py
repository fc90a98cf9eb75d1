"""SMTP AUTH (RFC 4954) with PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.proto.smtp.fakes import (
    SCRAM_SALT,
    FakeAuthenticator,
    FakeDelivery,
    Transcript,
    make_factory,
)
from vpop3d.core import sasl


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def session(**config: Any) -> Transcript:
    config.setdefault("allow_plaintext_auth_without_tls", True)
    t = Transcript(make_factory(FakeDelivery(), **config))
    t.send("EHLO c")
    return t


def test_auth_plain_with_initial_response():
    """AUTH PLAIN with a correct initial response gives 235 2.7.0."""
    t = session()
    reply = t.send("AUTH PLAIN " + b64(b"\0fred\0secret"))
    assert reply == ["235 2.7.0 Authentication successful"]
    assert t.protocol.session.principal is not None
    assert t.send("AUTH PLAIN " + b64(b"\0fred\0secret")) == ["503 5.5.1 Already authenticated"]


def test_auth_plain_with_empty_challenge():
    """AUTH PLAIN without initial response gets `334 ` then takes the response."""
    t = session()
    assert t.send("AUTH PLAIN") == ["334 "]
    assert t.send(b64(b"\0fred\0secret")) == ["235 2.7.0 Authentication successful"]


def test_auth_login_two_challenges():
    """AUTH LOGIN asks Username: then Password: (base64)."""
    t = session()
    assert t.send("AUTH LOGIN") == ["334 VXNlcm5hbWU6"]
    assert t.send(b64(b"fred")) == ["334 UGFzc3dvcmQ6"]
    assert t.send(b64(b"secret")) == ["235 2.7.0 Authentication successful"]


def test_wrong_password_is_535_and_session_continues():
    """Wrong credentials get 535 5.7.8 and the client may try again."""
    t = session()
    assert t.send("AUTH PLAIN " + b64(b"\0fred\0wrong")) == [
        "535 5.7.8 Authentication credentials invalid"
    ]
    assert t.send("AUTH PLAIN " + b64(b"\0fred\0secret"))[0].startswith("235")


def test_too_many_failures_disconnect():
    """The third failed AUTH in a session drops the connection (manual L6884)."""
    t = session()
    for _ in range(2):
        t.send("AUTH PLAIN " + b64(b"\0fred\0wrong"))
    assert t.send("AUTH PLAIN " + b64(b"\0fred\0wrong")) == [
        "535 5.7.8 Authentication credentials invalid",
        "421 4.7.0 mail.a.test Too many failed authentication attempts",
    ]
    assert t.closed


def test_cancel_and_bad_base64():
    """`*` cancels with 501; undecodable base64 gets 501 5.5.2."""
    t = session()
    t.send("AUTH LOGIN")
    assert t.send("*") == ["501 5.7.0 Authentication cancelled"]
    t.send("AUTH LOGIN")
    assert t.send("!!notbase64") == ["501 5.5.2 Cannot decode base64 response"]
    assert t.send("NOOP") == ["250 2.0.0 OK"]


def test_cram_md5():
    """CRAM-MD5 verifies an HMAC-MD5 over the server challenge (RFC 2195)."""
    t = session()
    [challenge_line] = t.send("AUTH CRAM-MD5")
    assert challenge_line.startswith("334 ")
    challenge = base64.b64decode(challenge_line[4:])
    digest = hmac.new(b"secret", challenge, hashlib.md5).hexdigest()
    assert t.send(b64(b"fred " + digest.encode())) == ["235 2.7.0 Authentication successful"]


def test_cram_md5_not_offered_when_disabled():
    """Without plaintext-equivalent secrets CRAM-MD5 is neither offered nor accepted."""
    t = Transcript(make_factory(FakeDelivery(), FakeAuthenticator(cram=False)))
    assert "250-AUTH SCRAM-SHA-256" in t.send("EHLO c")
    assert t.send("AUTH CRAM-MD5") == ["504 5.5.4 Unrecognized authentication type"]


def test_scram_sha_256_full_exchange():
    """SCRAM-SHA-256 (RFC 7677): server-final is sent as a 334, then 235."""
    t = session()
    client_first_bare = b"n=fred,r=clientnonce123"
    [server_first_line] = t.send("AUTH SCRAM-SHA-256 " + b64(b"n,," + client_first_bare))
    assert server_first_line.startswith("334 ")
    server_first = base64.b64decode(server_first_line[4:])
    fields = dict(item.split(b"=", 1) for item in server_first.split(b","))
    assert base64.b64decode(fields[b"s"]) == SCRAM_SALT
    without_proof = b"c=biws,r=" + fields[b"r"]
    auth_message = client_first_bare + b"," + server_first + b"," + without_proof
    salted = sasl.scram_salted_password("secret", SCRAM_SALT, int(fields[b"i"]))
    proof = sasl.scram_client_proof(salted, auth_message)
    final = without_proof + b",p=" + base64.b64encode(proof)
    [server_final_line] = t.send(b64(final))
    assert server_final_line.startswith("334 ")
    assert base64.b64decode(server_final_line[4:]).startswith(b"v=")
    assert t.send("") == ["235 2.7.0 Authentication successful"]
    assert t.protocol.session.principal is not None


def test_plain_refused_without_tls_unless_allowed():
    """PLAIN over a plaintext link is refused with 538 5.7.11 (RFC 4954 §4)."""
    t = Transcript(make_factory(FakeDelivery()))
    t.send("EHLO c")
    assert t.send("AUTH PLAIN " + b64(b"\0fred\0secret")) == [
        "538 5.7.11 Encryption required for requested authentication mechanism"
    ]


def test_unknown_mechanism():
    """An unknown mechanism gets 504 5.5.4."""
    t = session()
    assert t.send("AUTH GSSAPI") == ["504 5.5.4 Unrecognized authentication type"]


def test_auth_required_for_submission():
    """A listener that requires AUTH refuses MAIL before it with 530 5.7.0."""
    t = session(require_auth=True)
    assert t.send("MAIL FROM:<fred@a.test>") == ["530 5.7.0 Authentication required"]
    t.send("AUTH PLAIN " + b64(b"\0fred\0secret"))
    assert t.send("MAIL FROM:<fred@a.test>") == ["250 2.1.0 OK"]


def test_authenticated_relay_and_principal_in_context():
    """After AUTH relaying is allowed and the principal reaches the DeliveryAgent."""
    delivery = FakeDelivery()
    t = Transcript(make_factory(delivery, allow_plaintext_auth_without_tls=True))
    t.send("EHLO c")
    t.send("AUTH PLAIN " + b64(b"\0fred\0secret"))
    t.send("MAIL FROM:<fred@a.test>")
    assert t.send("RCPT TO:<x@remote.test>") == ["250 2.1.5 OK"]
    t.send("DATA")
    t.raw(b"hi\r\n.\r\n")
    principal = delivery.accepted[0].context.principal
    assert principal is not None
    assert principal.username == "fred"


def test_login_context_names_listener_and_security():
    """The Authenticator learns the listener, peer IP and TLS state."""
    authenticator = FakeAuthenticator()
    t = Transcript(
        make_factory(
            FakeDelivery(),
            authenticator,
            name="submission",
            allow_plaintext_auth_without_tls=True,
        )
    )
    t.send("EHLO c")
    t.send("AUTH PLAIN " + b64(b"\0fred\0secret"))
    [context] = authenticator.contexts
    assert (context.service, context.peer_ip, context.secure) == (
        "submission",
        "192.0.2.7",
        False,
    )
