"""Client-side SASL and APOP (vpop3d.core.saslclient), checked against RFC examples."""

from __future__ import annotations

import base64

import pytest

from vpop3d.core.sasl import (
    Challenge,
    ChallengeCredentials,
    Done,
    Failed,
    NeedScramKeys,
    PasswordCredentials,
    PlainMechanism,
    SASLMalformed,
    ScramSHA256Mechanism,
    ScramVerified,
    decode_client_response,
    derive_scram_keys,
    encode_challenge,
)
from vpop3d.core.saslclient import (
    ScramClient,
    apop_digest,
    cram_md5_response,
    plain_response,
)

RFC7677_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _rfc7677_client() -> ScramClient:
    return ScramClient("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")


def test_plain_response_rfc4616_messages() -> None:
    """RFC 4616 §4: the message is authzid NUL authcid NUL password in UTF-8."""
    assert plain_response("tim", "tanstaaftanstaaf") == b"\x00tim\x00tanstaaftanstaaf"
    assert plain_response("Kurt", "xipj3plmq", "Ursel") == b"Ursel\x00Kurt\x00xipj3plmq"
    assert plain_response("j\u00fcrgen", "\u00e4") == "\x00j\u00fcrgen\x00\u00e4".encode()


def test_plain_response_is_accepted_by_our_server() -> None:
    """Our PLAIN server reads back exactly what our client wrote."""
    step = PlainMechanism().start(plain_response("tim", "pw", "admin"))
    assert step == Done(PasswordCredentials("tim", "pw", "admin"))


def test_cram_md5_response_rfc2195_example() -> None:
    """RFC 2195 §2: the answer to the example challenge, raw and on the wire."""
    challenge = decode_client_response(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
    answer = cram_md5_response("tim", "tanstaaftanstaaf", challenge)
    assert answer == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert encode_challenge(answer) == b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"


def test_apop_digest_rfc1939_example() -> None:
    """RFC 1939 §7: MD5 of the greeting timestamp followed by the secret."""
    digest = apop_digest(b"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
    assert digest == "c4c9334bac560ecc979e58001b3e22fb"
    creds = ChallengeCredentials("mrose", b"<1896.697170952@dbc.mtview.ca.us>", digest, "apop")
    assert creds.verify("tanstaaf")


def test_scram_client_rfc7677_exchange() -> None:
    """RFC 7677 §3: the client writes the RFC's messages and accepts its signature."""
    client = _rfc7677_client()
    assert client.first() == RFC7677_CLIENT_FIRST
    assert client.final(RFC7677_SERVER_FIRST) == RFC7677_CLIENT_FINAL
    assert client.verify(RFC7677_SERVER_FINAL)


def test_scram_client_rejects_wrong_or_missing_server_signature() -> None:
    """A forged signature, an ``e=`` error or a premature verify are all False."""
    assert not _rfc7677_client().verify(RFC7677_SERVER_FINAL)  # before final()
    client = _rfc7677_client()
    client.final(RFC7677_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(b"\x00" * 32)
    assert not client.verify(forged)
    assert not client.verify(b"e=invalid-proof")
    assert not client.verify(b"v=!!!")
    assert not client.verify(b"")


def test_scram_client_escapes_username_and_authzid() -> None:
    """RFC 5802 §5.1: ``,`` and ``=`` in names go out as =2C and =3D."""
    client = ScramClient("a,b=c", "pw", authzid="x=y", nonce="abc")
    assert client.first() == b"n,a=x=3Dy,n=a=2Cb=3Dc,r=abc"


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=OTHERsrv,s=c2FsdA==,i=4096",  # does not extend our nonce
        b"r=abc,s=c2FsdA==,i=4096",  # adds nothing to our nonce
        b"r=abcsrv,s=!!!,i=4096",  # salt not base64
        b"r=abcsrv,s=,i=4096",  # empty salt
        b"r=abcsrv,s=c2FsdA==,i=0",  # zero iterations
        b"r=abcsrv,s=c2FsdA==,i=-1",  # negative
        b"r=abcsrv,s=c2FsdA==,i=99999999",  # too expensive
        b"r=abcsrv,s=c2FsdA==",  # missing count
        b"m=x,r=abcsrv,s=c2FsdA==,i=4096",  # mandatory extension
        b"s=c2FsdA==,r=abcsrv,i=4096",  # wrong order
        b"r=abc\xffsrv,s=c2FsdA==,i=4096",  # not UTF-8
    ],
)
def test_scram_client_rejects_bad_server_first(server_first: bytes) -> None:
    """A server-first that is malformed, replays our nonce or costs too much raises."""
    with pytest.raises(SASLMalformed):
        ScramClient("user", "pw", nonce="abc").final(server_first)


def test_scram_client_rejects_bad_fixed_nonce() -> None:
    """A test nonce must be printable without commas."""
    with pytest.raises(ValueError):
        ScramClient("user", "pw", nonce="a,b")


def test_scram_client_nonces_are_random() -> None:
    """Without a fixed nonce each client picks a fresh one."""
    assert ScramClient("u", "p").first() != ScramClient("u", "p").first()


@pytest.mark.parametrize(
    ("username", "authzid", "password"),
    [
        ("user", "", "pencil"),
        ("odd,na=me", "boss,=", "p\u00e4ss\u00a0w\u00f6rd"),
    ],
)
def test_scram_client_against_our_server(username: str, authzid: str, password: str) -> None:
    """Client and server agree end to end, odd names and non-ASCII passwords too."""
    keys = derive_scram_keys(password, iterations=4096)
    client = ScramClient(username, password, authzid=authzid)
    server = ScramSHA256Mechanism()
    assert server.start(client.first()) == NeedScramKeys(username)
    server_first = server.provide_keys(keys)
    assert isinstance(server_first, Challenge)
    step = server.respond(client.final(server_first.data))
    assert step == Done(ScramVerified(username, authzid))
    assert client.verify(server.server_final())


def test_scram_client_with_wrong_password_is_refused_by_our_server() -> None:
    """A wrong password gives a proof our server rejects."""
    server = ScramSHA256Mechanism()
    client = ScramClient("user", "not-pencil")
    server.start(client.first())
    server_first = server.provide_keys(derive_scram_keys("pencil"))
    assert isinstance(server_first, Challenge)
    assert isinstance(server.respond(client.final(server_first.data)), Failed)


def test_scram_passwords_are_saslprepped() -> None:
    """RFC 5802 §2.2: ``I<soft hyphen>X`` logs in against keys made from ``IX``."""
    server = ScramSHA256Mechanism()
    client = ScramClient("tim", "I\u00adX")
    server.start(client.first())
    server_first = server.provide_keys(derive_scram_keys("IX"))
    assert isinstance(server_first, Challenge)
    assert server.respond(client.final(server_first.data)) == Done(ScramVerified("tim"))
