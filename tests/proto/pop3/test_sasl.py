"""POP3 AUTH (RFC 5034): PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256, SASL-IR, cancel."""

from __future__ import annotations

import base64
import hmac

from tests.proto.pop3.harness import (
    FakeAuthenticator,
    Transcript,
    make_factory,
    sample_maildrops,
)
from vpop3d.core import sasl


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(reply: str) -> bytes:
    assert reply.startswith("+ "), reply
    return base64.b64decode(reply[2:].strip())


def new_transcript(authenticator: FakeAuthenticator | None = None) -> Transcript:
    t = Transcript(make_factory(authenticator, sample_maildrops()))
    t.greeting()
    return t


def test_auth_plain_with_initial_response() -> None:
    """AUTH PLAIN with SASL-IR logs in at once."""
    t = new_transcript()
    t.expect("AUTH PLAIN " + b64(b"\x00fred\x00letmein"), "+OK 3 messages (89 octets)")


def test_auth_plain_with_continuation() -> None:
    """AUTH PLAIN without IR gets an empty '+ ' challenge first."""
    t = new_transcript()
    t.expect("AUTH PLAIN", "+ ")
    t.expect(b64(b"\x00fred\x00letmein"), "+OK 3 messages (89 octets)")


def test_auth_plain_wrong_password() -> None:
    """Wrong credentials over AUTH answer -ERR [AUTH] and count as a failure."""
    t = new_transcript()
    t.expect("AUTH PLAIN " + b64(b"\x00fred\x00nope"), "-ERR [AUTH] Authentication failed")
    t.expect("STAT", "-ERR Command not valid in this state")


def test_auth_login() -> None:
    """AUTH LOGIN asks for user name and password in turn."""
    t = new_transcript()
    assert unb64(t.send("AUTH LOGIN")) == b"Username:"
    assert unb64(t.send(b64(b"fred"))) == b"Password:"
    t.expect(b64(b"letmein"), "+OK 3 messages (89 octets)")


def test_auth_cancel() -> None:
    """A '*' response cancels the exchange with -ERR (RFC 5034 §4)."""
    t = new_transcript()
    t.send("AUTH LOGIN")
    t.expect("*", "-ERR Authentication cancelled")
    t.expect("STAT", "-ERR Command not valid in this state")
    assert t.login().startswith("+OK")


def test_auth_garbage_base64() -> None:
    """An undecodable response ends the exchange with -ERR."""
    t = new_transcript()
    t.send("AUTH PLAIN")
    t.expect("!!!notbase64", "-ERR Invalid base64 in response")
    t.expect("AUTH PLAIN !!!", "-ERR Invalid base64 in initial response")
    t.expect("NOOP", "-ERR Command not valid in this state")


def test_auth_malformed_plain_message_counts_as_failure() -> None:
    """A PLAIN message without two NULs fails like a wrong password."""
    t = new_transcript()
    t.expect("AUTH PLAIN " + b64(b"fred"), "-ERR [AUTH] Authentication failed")


def test_auth_unknown_mechanism() -> None:
    """An unsupported mechanism is refused; CRAM-MD5 only when enabled."""
    t = new_transcript()
    t.expect("AUTH GSSAPI", "-ERR Unrecognized authentication type")
    t.expect("AUTH CRAM-MD5", "-ERR Unrecognized authentication type")


def test_bare_auth_lists_mechanisms() -> None:
    """AUTH without a mechanism lists the mechanisms (pre-RFC 5034 clients)."""
    t = new_transcript()
    t.expect(
        "AUTH",
        "+OK Supported mechanisms follow",
        "SCRAM-SHA-256",
        "PLAIN",
        "LOGIN",
        ".",
    )


def test_auth_cram_md5_when_enabled() -> None:
    """CRAM-MD5 is offered and works when plaintext-equivalent secrets exist."""
    t = new_transcript(FakeAuthenticator(plaintext_equivalent=True))
    challenge = unb64(t.send("AUTH CRAM-MD5"))
    assert challenge.startswith(b"<")
    assert challenge.endswith(b">")
    digest = hmac.new(b"letmein", challenge, "md5").hexdigest()
    t.expect(b64(f"fred {digest}".encode()), "+OK 3 messages (89 octets)")


def scram_login(t: Transcript, password: str, *, initial: bool) -> str:
    """Run a SCRAM-SHA-256 exchange as a client; return the final server reply."""
    client_nonce = "rOprNGfwEbeRWgbNEkqO"
    first_bare = f"n=fred,r={client_nonce}"
    first = b64(f"n,,{first_bare}".encode())
    if initial:
        server_first = unb64(t.send(f"AUTH SCRAM-SHA-256 {first}")).decode()
    else:
        assert t.send("AUTH SCRAM-SHA-256") == "+ \r\n"
        server_first = unb64(t.send(first)).decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    assert attrs["r"].startswith(client_nonce)
    salt = base64.b64decode(attrs["s"])
    salted = sasl.scram_salted_password(password, salt, int(attrs["i"]))
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    proof = sasl.scram_client_proof(salted, auth_message)
    reply = t.send(b64(f"{without_proof},p={b64(proof)}".encode()))
    if reply.startswith("+ "):
        keys = sasl.scram_keys_from_salted(salted, salt, int(attrs["i"]))
        expected = sasl.scram_server_signature(keys.server_key, auth_message)
        assert unb64(reply) == b"v=" + base64.b64encode(expected)
        return t.send("")
    return reply


def test_auth_scram_sha_256() -> None:
    """SCRAM-SHA-256 logs in; the server signature comes as a final '+' challenge."""
    t = new_transcript()
    assert scram_login(t, "letmein", initial=False) == "+OK 3 messages (89 octets)\r\n"


def test_auth_scram_sha_256_with_initial_response() -> None:
    """SCRAM-SHA-256 with SASL-IR works the same way."""
    t = new_transcript()
    assert scram_login(t, "letmein", initial=True) == "+OK 3 messages (89 octets)\r\n"


def test_auth_scram_wrong_password() -> None:
    """A wrong SCRAM proof fails with -ERR [AUTH]."""
    t = new_transcript()
    assert scram_login(t, "wrong", initial=True) == "-ERR [AUTH] Authentication failed\r\n"


def test_auth_payload_lines_may_exceed_command_limit() -> None:
    """SASL responses may be longer than 255 octets (RFC 5034 §4)."""
    t = new_transcript()
    t.send("AUTH PLAIN")
    t.expect(b64(b"\x00fred\x00" + b"x" * 400), "-ERR [AUTH] Authentication failed")
