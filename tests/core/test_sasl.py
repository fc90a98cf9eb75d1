"""Server-side SASL mechanisms, credentials and wire helpers (vpop3d.core.sasl)."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.sasl import (
    Challenge,
    ChallengeCredentials,
    CramMD5Mechanism,
    Done,
    Failed,
    LoginMechanism,
    NeedScramKeys,
    PasswordCredentials,
    PlainMechanism,
    SASLCancelled,
    SASLMalformed,
    ScramKeys,
    ScramSHA256Mechanism,
    ScramVerified,
    ServerMechanism,
    Step,
    advertised_mechanisms,
    decode_client_response,
    derive_scram_keys,
    encode_challenge,
    make_challenge,
    saslprep,
    scram_client_proof,
    scram_salted_password,
    server_mechanism,
)

# RFC 7677 §3 example exchange.
RFC7677_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC7677_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC7677_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
RFC7677_KEYS = derive_scram_keys("pencil", RFC7677_SALT, 4096)

# RFC 2195 §2 example.
RFC2195_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
RFC2195_DIGEST = "b913a602c7eda7a495b4e6e7334d3890"

# RFC 1939 §7 example.
RFC1939_TIMESTAMP = b"<1896.697170952@dbc.mtview.ca.us>"
RFC1939_DIGEST = "c4c9334bac560ecc979e58001b3e22fb"

MECHANISM_NAMES = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256")


def _mechanism(name: str) -> ServerMechanism:
    mechanism = server_mechanism(name, "mail.example.test", allow_plaintext_equivalent=True)
    assert mechanism is not None
    return mechanism


def _scram_to_final(
    client_first: bytes, keys: ScramKeys | None, server_nonce: str = "srv"
) -> ScramSHA256Mechanism:
    mechanism = ScramSHA256Mechanism(server_nonce=server_nonce)
    step = mechanism.start(client_first)
    assert isinstance(step, NeedScramKeys)
    assert isinstance(mechanism.provide_keys(keys), Challenge)
    return mechanism


# ----------------------------------------------------------------- credentials


def test_cram_md5_credentials_verify_rfc2195_example() -> None:
    """The RFC 2195 digest verifies against the RFC's shared secret."""
    creds = ChallengeCredentials("tim", RFC2195_CHALLENGE, RFC2195_DIGEST, "cram-md5")
    assert creds.verify("tanstaaftanstaaf")
    assert not creds.verify("tanstaaf")


def test_apop_credentials_verify_rfc1939_example() -> None:
    """The RFC 1939 APOP digest verifies against the RFC's secret."""
    creds = ChallengeCredentials("mrose", RFC1939_TIMESTAMP, RFC1939_DIGEST, "apop")
    assert creds.verify("tanstaaf")
    assert not creds.verify("tanstaaftanstaaf")


def test_challenge_credentials_compare_case_insensitively() -> None:
    """An upper-case hex digest from a sloppy client still verifies."""
    creds = ChallengeCredentials("mrose", RFC1939_TIMESTAMP, RFC1939_DIGEST.upper(), "apop")
    assert creds.verify("tanstaaf")


def test_challenge_credentials_reject_unknown_kind_and_odd_text() -> None:
    """An unknown kind or a non-ASCII response is simply wrong, never an exception."""
    assert not ChallengeCredentials("t", RFC2195_CHALLENGE, RFC2195_DIGEST, "x").verify(
        "tanstaaftanstaaf"
    )
    odd = ChallengeCredentials("t", RFC2195_CHALLENGE, "é" * 32, "cram-md5")
    assert not odd.verify("tanstaaftanstaaf")


def test_make_challenge_is_a_fresh_msg_id_like_timestamp() -> None:
    """Challenges look like ``<pid.random.time@host>`` and differ each call."""
    first = make_challenge("mail.example.test")
    assert re.fullmatch(rb"<\d+\.\d+\.\d+@mail\.example\.test>", first)
    assert first != make_challenge("mail.example.test")


# ----------------------------------------------------------------- SCRAM keys


@given(
    salt=st.binary(min_size=1, max_size=64),
    iterations=st.integers(min_value=1, max_value=10**7),
    stored=st.binary(min_size=32, max_size=32),
    server=st.binary(min_size=32, max_size=32),
)
def test_scram_keys_round_trip(salt: bytes, iterations: int, stored: bytes, server: bytes) -> None:
    """decode(encode(keys)) gives the same keys back."""
    keys = ScramKeys(salt, iterations, stored, server)
    assert keys.encode().startswith(f"SCRAM-SHA-256${iterations}$")
    assert ScramKeys.decode(keys.encode()) == keys


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SCRAM-SHA-1$4096$c2FsdA==$" + "A" * 44 + "$" + "A" * 44,
        "SCRAM-SHA-256$4096$c2FsdA==$" + "A" * 43 + "=",
        "SCRAM-SHA-256$0$c2FsdA==$" + "A" * 43 + "=$" + "A" * 43 + "=",
        "SCRAM-SHA-256$+40$c2FsdA==$" + "A" * 43 + "=$" + "A" * 43 + "=",
        "SCRAM-SHA-256$4096$c2Fsd!==$" + "A" * 43 + "=$" + "A" * 43 + "=",
        "SCRAM-SHA-256$4096$$" + "A" * 43 + "=$" + "A" * 43 + "=",
        "SCRAM-SHA-256$4096$c2FsdA==$QUFB$" + "A" * 43 + "=",
    ],
)
def test_scram_keys_decode_rejects_bad_records(text: str) -> None:
    """Wrong prefix, field count, count, base64 or key size is a ValueError."""
    with pytest.raises(ValueError):
        ScramKeys.decode(text)


def test_derive_scram_keys_uses_a_random_salt_and_default_count() -> None:
    """Without a salt, each derivation gets its own 16-byte salt and i=4096."""
    first, second = derive_scram_keys("pencil"), derive_scram_keys("pencil")
    assert len(first.salt) == 16
    assert first.salt != second.salt
    assert first.iterations == 4096
    assert first.stored_key != second.stored_key


def test_derive_scram_keys_refuses_zero_iterations() -> None:
    """An iteration count below one is a programming error."""
    with pytest.raises(ValueError):
        derive_scram_keys("pencil", b"salt", 0)


@pytest.mark.parametrize(
    ("raw", "prepared"),
    [
        ("pencil", "pencil"),
        ("I\u00adX", "IX"),  # RFC 4013 §3: soft hyphen maps to nothing
        ("\u00aa", "a"),  # RFC 4013 §3: NFKC
        ("\u2168", "IX"),  # RFC 4013 §3: NFKC
        ("a\u00a0b", "a b"),  # non-ASCII space maps to SPACE
        ("\u0007", "\u0007"),  # prohibited: kept as given
    ],
)
def test_saslprep_follows_rfc4013_examples(raw: str, prepared: str) -> None:
    """SASLprep maps and normalizes, and leaves prohibited strings unchanged."""
    assert saslprep(raw) == prepared


# ----------------------------------------------------------------- PLAIN


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            b"\x00tim\x00tanstaaftanstaaf",
            PasswordCredentials("tim", "tanstaaftanstaaf"),
        ),
        (
            b"Ursel\x00Kurt\x00xipj3plmq",
            PasswordCredentials("Kurt", "xipj3plmq", "Ursel"),
        ),
        (
            "\x00j\u00fcrgen\x00p\u00e4ss word".encode(),
            PasswordCredentials("j\u00fcrgen", "p\u00e4ss word"),
        ),
    ],
)
def test_plain_initial_response_gives_password_credentials(
    message: bytes, expected: PasswordCredentials
) -> None:
    """RFC 4616 §4 examples: authzid, authcid and password come out in UTF-8."""
    assert PlainMechanism().start(message) == Done(expected)


def test_plain_without_initial_response_sends_empty_challenge() -> None:
    """RFC 4616 §2: with no initial response the server asks with an empty challenge."""
    mechanism = PlainMechanism()
    assert mechanism.start(None) == Challenge(b"")
    step = mechanism.respond(b"\x00tim\x00tanstaaf")
    assert step == Done(PasswordCredentials("tim", "tanstaaf"))
    assert mechanism.server_final() == b""


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00\x00secret",  # empty authcid
        b"\x00tim\x00",  # empty password
        b"tim\x00secret",  # one NUL
        b"\x00tim\x00sec\x00ret",  # three NULs: a NUL inside the password
        b"\x00tim\xff\x00secret",  # not UTF-8
    ],
)
def test_plain_rejects_malformed_messages(message: bytes) -> None:
    """Missing fields, wrong NUL count and bad UTF-8 fail the exchange."""
    assert isinstance(PlainMechanism().start(message), Failed)


def test_plain_is_over_after_done() -> None:
    """Once done, more data or keys fail instead of authenticating again."""
    mechanism = PlainMechanism()
    assert isinstance(mechanism.start(b"\x00tim\x00x"), Done)
    assert isinstance(mechanism.respond(b"\x00tim\x00x"), Failed)
    assert isinstance(mechanism.provide_keys(None), Failed)
    assert isinstance(mechanism.start(None), Failed)


# ----------------------------------------------------------------- LOGIN


def test_login_asks_username_then_password() -> None:
    """LOGIN challenges ``Username:`` and ``Password:`` and returns the pair."""
    mechanism = LoginMechanism()
    assert mechanism.start(None) == Challenge(b"Username:")
    assert mechanism.respond(b"tim") == Challenge(b"Password:")
    assert mechanism.respond(b"tanstaaf") == Done(PasswordCredentials("tim", "tanstaaf"))


def test_login_takes_initial_response_as_username() -> None:
    """An initial response is the username; only the password is asked for."""
    mechanism = LoginMechanism()
    assert mechanism.start(b"tim") == Challenge(b"Password:")
    assert mechanism.respond(b"tanstaaf") == Done(PasswordCredentials("tim", "tanstaaf"))


@pytest.mark.parametrize(
    ("initial", "password"),
    [(b"", b"x"), (b"\xff", b"x"), (b"tim", b""), (b"tim", b"\xfe")],
)
def test_login_rejects_empty_or_non_utf8_fields(initial: bytes, password: bytes) -> None:
    """An empty or undecodable username or password fails the exchange."""
    mechanism = LoginMechanism()
    step = mechanism.start(initial)
    if isinstance(step, Challenge):
        step = mechanism.respond(password)
    assert isinstance(step, Failed)


def test_login_respond_before_start_fails() -> None:
    """Data before the exchange started is out of order."""
    assert isinstance(LoginMechanism().respond(b"tim"), Failed)


# ----------------------------------------------------------------- CRAM-MD5


def test_cram_md5_rfc2195_exchange() -> None:
    """RFC 2195 §2 transcript: the base64 challenge and answer give verifiable creds."""
    mechanism = CramMD5Mechanism("postoffice.reston.mci.net", challenge=RFC2195_CHALLENGE)
    step = mechanism.start(None)
    assert step == Challenge(RFC2195_CHALLENGE)
    assert encode_challenge(step.data) == (
        b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
    )
    answer = decode_client_response(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")
    done = mechanism.respond(answer)
    assert done == Done(ChallengeCredentials("tim", RFC2195_CHALLENGE, RFC2195_DIGEST, "cram-md5"))
    assert isinstance(done, Done)
    assert isinstance(done.credentials, ChallengeCredentials)
    assert done.credentials.verify("tanstaaftanstaaf")


def test_cram_md5_default_challenge_names_the_host() -> None:
    """Without a fixed challenge the mechanism sends a fresh timestamp for our host."""
    step = CramMD5Mechanism("mail.example.test").start(None)
    assert isinstance(step, Challenge)
    assert step.data.endswith(b"@mail.example.test>")


def test_cram_md5_username_may_contain_spaces() -> None:
    """The digest is the text after the last space; the rest is the username."""
    mechanism = CramMD5Mechanism("h", challenge=b"<1.2@h>")
    mechanism.start(None)
    step = mechanism.respond(b"Tim Smith " + RFC2195_DIGEST.upper().encode())
    assert isinstance(step, Done)
    assert step.credentials == ChallengeCredentials(
        "Tim Smith", b"<1.2@h>", RFC2195_DIGEST, "cram-md5"
    )


def test_cram_md5_refuses_initial_response() -> None:
    """RFC 4422 §3.3: CRAM-MD5 has no initial response, even an empty one."""
    assert isinstance(CramMD5Mechanism("h").start(b""), Failed)
    assert isinstance(CramMD5Mechanism("h").start(b"tim"), Failed)


@pytest.mark.parametrize(
    "answer",
    [
        RFC2195_DIGEST.encode(),  # no username
        b" " + RFC2195_DIGEST.encode(),  # empty username
        b"tim " + RFC2195_DIGEST[:-1].encode(),  # 31 digits
        b"tim " + b"g" * 32,  # not hex
        b"tim\xff " + RFC2195_DIGEST.encode(),  # not UTF-8
    ],
)
def test_cram_md5_rejects_malformed_answers(answer: bytes) -> None:
    """A missing username or a digest that is not 32 hex digits fails."""
    mechanism = CramMD5Mechanism("h")
    mechanism.start(None)
    assert isinstance(mechanism.respond(answer), Failed)


# ----------------------------------------------------------------- SCRAM-SHA-256


def test_scram_rfc7677_exchange() -> None:
    """RFC 7677 §3: the server accepts the RFC's proof and sends the RFC's signature."""
    mechanism = ScramSHA256Mechanism(server_nonce=RFC7677_SERVER_NONCE)
    assert mechanism.start(RFC7677_CLIENT_FIRST) == NeedScramKeys("user")
    assert mechanism.server_final() == b""
    assert mechanism.provide_keys(RFC7677_KEYS) == Challenge(RFC7677_SERVER_FIRST)
    assert mechanism.respond(RFC7677_CLIENT_FINAL) == Done(ScramVerified("user"))
    assert mechanism.server_final() == RFC7677_SERVER_FINAL


def test_scram_rfc7677_exchange_with_stored_record_and_no_initial_response() -> None:
    """Keys read back from their stored text work; no initial response asks first."""
    mechanism = ScramSHA256Mechanism(server_nonce=RFC7677_SERVER_NONCE)
    assert mechanism.start(None) == Challenge(b"")
    assert mechanism.respond(RFC7677_CLIENT_FIRST) == NeedScramKeys("user")
    keys = ScramKeys.decode(RFC7677_KEYS.encode())
    assert mechanism.provide_keys(keys) == Challenge(RFC7677_SERVER_FIRST)
    assert isinstance(mechanism.respond(RFC7677_CLIENT_FINAL), Done)


def test_scram_wrong_proof_fails() -> None:
    """A proof made with another password is rejected and no signature is given."""
    # Same nonces as the RFC, so only the proof is wrong.
    mechanism = ScramSHA256Mechanism(server_nonce=RFC7677_SERVER_NONCE)
    mechanism.start(RFC7677_CLIENT_FIRST)
    mechanism.provide_keys(derive_scram_keys("wrong", RFC7677_SALT, 4096))
    assert mechanism.respond(RFC7677_CLIENT_FINAL) == Failed("invalid SCRAM proof")
    assert mechanism.server_final() == b""


def test_scram_tampered_proof_fails() -> None:
    """Flipping one proof byte of the RFC exchange makes it fail."""
    mechanism = ScramSHA256Mechanism(server_nonce=RFC7677_SERVER_NONCE)
    mechanism.start(RFC7677_CLIENT_FIRST)
    mechanism.provide_keys(RFC7677_KEYS)
    prefix, _, proof = RFC7677_CLIENT_FINAL.partition(b",p=")
    raw = bytearray(base64.b64decode(proof))
    raw[0] ^= 1
    step = mechanism.respond(prefix + b",p=" + base64.b64encode(bytes(raw)))
    assert step == Failed("invalid SCRAM proof")


def test_scram_unknown_user_runs_to_the_proof_and_fails() -> None:
    """RFC 5802 §9: an unknown user gets a normal server-first, fails at the proof."""
    mechanism = ScramSHA256Mechanism(server_nonce=RFC7677_SERVER_NONCE)
    assert mechanism.start(RFC7677_CLIENT_FIRST) == NeedScramKeys("user")
    first = mechanism.provide_keys(None)
    assert isinstance(first, Challenge)
    assert re.fullmatch(
        rb"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,s=[A-Za-z0-9+/]{22}==,i=4096",
        first.data,
    )
    assert mechanism.respond(RFC7677_CLIENT_FINAL) == Failed("invalid SCRAM proof")
    assert mechanism.server_final() == b""


def test_scram_unknown_user_salt_is_stable_per_username() -> None:
    """Asking twice for one unknown user shows the same salt; another user differs."""

    def server_first(username: str) -> bytes:
        mechanism = ScramSHA256Mechanism(server_nonce="x")
        mechanism.start(f"n,,n={username},r=abc".encode())
        step = mechanism.provide_keys(None)
        assert isinstance(step, Challenge)
        return step.data

    assert server_first("ghost") == server_first("ghost")
    assert server_first("ghost") != server_first("phantom")


def test_scram_accepts_y_flag_and_captures_authzid() -> None:
    """``y,a=...`` is fine without -PLUS; the authzid and username are unescaped."""
    gs2 = b"y,a=adm=2Cin=3D,"
    bare = b"n=us=3Der=2C1,r=cnonce"
    keys = derive_scram_keys("pw", b"salt", 4096)
    mechanism = _scram_to_final(gs2 + bare, keys)
    channel = base64.b64encode(gs2).decode()
    without_proof = f"c={channel},r=cnoncesrv"
    auth = b",".join([bare, b"r=cnoncesrv,s=c2FsdA==,i=4096", without_proof.encode()])
    proof = scram_client_proof(scram_salted_password("pw", b"salt", 4096), auth)
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    assert mechanism.respond(final) == Done(ScramVerified("us=er,1", "adm,in="))


@pytest.mark.parametrize(
    "client_first",
    [
        b"p=tls-unique,,n=user,r=abc",  # channel binding requested
        b"x,,n=user,r=abc",  # unknown flag
        b"n,,m=ext,n=user,r=abc",  # mandatory extension
        b"n,,n=user",  # no nonce
        b"n,,r=abc,n=user",  # wrong order
        b"n,,n=,r=abc",  # empty username
        b"n,,n=us=41er,r=abc",  # bad saslname escape
        b"n,a=,n=user,r=abc",  # empty authzid
        b"n,b=x,n=user,r=abc",  # not an authzid
        b"n,,n=user,r=",  # empty nonce
        b"n,,n=user,r=a\x7fb",  # nonce not printable
        b"n,n=user,r=abc",  # gs2 header too short
        b"n,,n=\xffuser,r=abc",  # not UTF-8
        b"",  # empty initial response
    ],
)
def test_scram_rejects_bad_client_first(client_first: bytes) -> None:
    """Channel binding, extensions and malformed client-first messages fail at once."""
    assert isinstance(ScramSHA256Mechanism().start(client_first), Failed)


def test_scram_refuses_channel_binding_with_a_reason() -> None:
    """``p=`` gets a reason that names channel binding, for the log."""
    step = ScramSHA256Mechanism().start(b"p=tls-exporter,,n=user,r=abc")
    assert step == Failed("channel binding is not supported")


@pytest.mark.parametrize(
    "client_final",
    [
        b"c=biws,r=abcsrv",  # no proof
        b"c=biws,r=abcOTHER,p=" + b"A" * 43 + b"=",  # nonce mismatch
        b"c=eSws,r=abcsrv,p=" + b"A" * 43 + b"=",  # binding says y,, not n,,
        b"r=abcsrv,c=biws,p=" + b"A" * 43 + b"=",  # wrong order
        b"c=biws,r=abcsrv,p=QUFB",  # proof too short
        b"c=biws,r=abcsrv,p=!!!",  # proof not base64
        b"c=bi\xffws,r=abcsrv,p=QUFB",  # not UTF-8
    ],
)
def test_scram_rejects_bad_client_final(client_final: bytes) -> None:
    """A missing proof, a wrong nonce or binding, or a bad proof encoding fails."""
    mechanism = _scram_to_final(b"n,,n=user,r=abc", RFC7677_KEYS)
    assert isinstance(mechanism.respond(client_final), Failed)


def test_scram_steps_out_of_order_fail() -> None:
    """Keys before client-first, or a second set of keys, end the exchange."""
    assert isinstance(ScramSHA256Mechanism().provide_keys(RFC7677_KEYS), Failed)
    assert isinstance(ScramSHA256Mechanism().respond(RFC7677_CLIENT_FINAL), Failed)
    mechanism = _scram_to_final(b"n,,n=user,r=abc", RFC7677_KEYS)
    assert isinstance(mechanism.provide_keys(RFC7677_KEYS), Failed)
    assert isinstance(mechanism.respond(RFC7677_CLIENT_FINAL), Failed)


def test_scram_rejects_bad_test_nonce() -> None:
    """A fixed server nonce must itself be a valid SCRAM nonce."""
    with pytest.raises(ValueError):
        ScramSHA256Mechanism(server_nonce="a,b")


def test_scram_random_server_nonces_differ() -> None:
    """Each exchange extends the client nonce with fresh random text."""

    def nonce() -> bytes:
        mechanism = ScramSHA256Mechanism()
        mechanism.start(b"n,,n=user,r=abc")
        step = mechanism.provide_keys(RFC7677_KEYS)
        assert isinstance(step, Challenge)
        return step.data.split(b",")[0]

    first, second = nonce(), nonce()
    assert first.startswith(b"r=abc")
    assert len(first) > len(b"r=abc") + 16
    assert first != second


# ----------------------------------------------------------------- registry


def test_server_mechanism_is_case_insensitive_and_fresh() -> None:
    """Names match in any case and each call gives a new exchange."""
    first = server_mechanism("scram-sha-256", "h", allow_plaintext_equivalent=False)
    second = server_mechanism("SCRAM-SHA-256", "h", allow_plaintext_equivalent=False)
    assert isinstance(first, ScramSHA256Mechanism)
    assert isinstance(second, ScramSHA256Mechanism)
    assert first is not second
    for name in ("plain", "Login"):
        mechanism = server_mechanism(name, "h", allow_plaintext_equivalent=False)
        assert mechanism is not None
        assert mechanism.name == name.upper()


def test_server_mechanism_gates_cram_md5_and_unknown_names() -> None:
    """CRAM-MD5 needs plaintext-equivalent secrets; unknown names give None."""
    assert server_mechanism("CRAM-MD5", "h", allow_plaintext_equivalent=False) is None
    cram = server_mechanism("cram-md5", "h", allow_plaintext_equivalent=True)
    assert isinstance(cram, CramMD5Mechanism)
    assert server_mechanism("GSSAPI", "h", allow_plaintext_equivalent=True) is None
    assert server_mechanism("", "h", allow_plaintext_equivalent=True) is None


@pytest.mark.parametrize(
    ("secure", "equivalent", "plain_without_tls", "expected"),
    [
        (True, True, False, ["SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5"]),
        (False, True, False, ["SCRAM-SHA-256", "CRAM-MD5"]),
        (False, False, False, ["SCRAM-SHA-256"]),
        (False, False, True, ["SCRAM-SHA-256", "PLAIN", "LOGIN"]),
        (True, False, False, ["SCRAM-SHA-256", "PLAIN", "LOGIN"]),
    ],
)
def test_advertised_mechanisms(
    secure: bool, equivalent: bool, plain_without_tls: bool, expected: list[str]
) -> None:
    """PLAIN/LOGIN need TLS unless allowed; CRAM-MD5 needs recoverable secrets."""
    assert (
        advertised_mechanisms(
            secure=secure,
            allow_plaintext_equivalent=equivalent,
            allow_plaintext_without_tls=plain_without_tls,
        )
        == expected
    )


# ----------------------------------------------------------------- wire helpers


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"dGltIHRhbnN0YWFm", b"tim tanstaaf"),
        (b"dGltIHRhbnN0YWFm\r\n", b"tim tanstaaf"),
        (b"=", b""),
        (b"", b""),
        (b"AHRpbQB0YW5zdGFhZg==", b"\x00tim\x00tanstaaf"),
    ],
)
def test_decode_client_response(line: bytes, data: bytes) -> None:
    """Base64 decodes; ``=`` and an empty line are empty data (RFC 4954 §4)."""
    assert decode_client_response(line) == data


def test_decode_client_response_star_cancels() -> None:
    """RFC 4422 §3.5: ``*`` aborts the exchange."""
    with pytest.raises(SASLCancelled):
        decode_client_response(b"*")
    with pytest.raises(SASLCancelled):
        decode_client_response(b"*\r\n")


@pytest.mark.parametrize(
    "line", [b"not base64!", b"dGlt!", b"dGl", b"dG ltIA==", b"\xff\xfe", b"**"]
)
def test_decode_client_response_rejects_garbage(line: bytes) -> None:
    """Anything that is not strict base64 raises SASLMalformed (a ValueError)."""
    with pytest.raises(SASLMalformed):
        decode_client_response(line)
    assert issubclass(SASLMalformed, ValueError)


def test_encode_challenge() -> None:
    """Challenges go out as base64; an empty one is empty text."""
    assert encode_challenge(b"") == b""
    assert encode_challenge(b"Username:") == b"VXNlcm5hbWU6"


# ----------------------------------------------------------------- robustness

_SCRAMISH = st.text(alphabet="nyrpcamsiv=,2CD3AB0\x00 ", max_size=40).map(str.encode)
_PREFIXED = st.tuples(
    st.sampled_from([b"n,,n=user,r=", b"y,a=x,n=u,r=abc", b"c=biws,r=", b"\x00tim\x00", b"tim "]),
    st.binary(max_size=60),
).map(b"".join)
_DATA = st.one_of(st.binary(max_size=80), _SCRAMISH, _PREFIXED)
_ACTIONS = st.lists(
    st.one_of(
        _DATA.map(lambda data: ("respond", data)),
        st.sampled_from([("keys", b"known"), ("keys", b"unknown")]),
    ),
    max_size=5,
)


@given(
    name=st.sampled_from(MECHANISM_NAMES),
    initial=st.one_of(st.none(), _DATA),
    actions=_ACTIONS,
)
def test_mechanisms_only_ever_return_steps(
    name: str, initial: bytes | None, actions: list[tuple[str, bytes]]
) -> None:
    """Random client data in any order gives a Step, never an exception."""
    mechanism = _mechanism(name)
    steps: list[Step] = [mechanism.start(initial)]
    for action, data in actions:
        if action == "respond":
            steps.append(mechanism.respond(data))
        else:
            steps.append(mechanism.provide_keys(RFC7677_KEYS if data == b"known" else None))
    assert all(isinstance(s, Challenge | NeedScramKeys | Done | Failed) for s in steps)
    assert isinstance(mechanism.server_final(), bytes)
