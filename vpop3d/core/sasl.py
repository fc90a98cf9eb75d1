"""SASL mechanisms as sans-IO state machines, shared by SMTP, POP3 and IMAP.

A protocol adapter creates a mechanism with ``server_mechanism(name, hostname, ...)``,
feeds it the decoded client data, and acts on the returned step:

- ``Challenge(data)``: send ``data`` base64-encoded as a continuation (334 / ``+``).
- ``NeedScramKeys(username)``: fetch ``Authenticator.scram_keys(username)`` and call
  ``mechanism.provide_keys(keys_or_None)``, which returns the next step.
- ``Done(credentials)``: pass the credentials to ``Authenticator.authenticate``.
  For SCRAM, call ``mechanism.server_final()`` after a successful login to get the
  server-final message (sent as the last challenge, or as SASL-IR success data).
- ``Failed(reason)``: the exchange is malformed or the proof is wrong. ``reason`` is
  for logs; clients only ever see the protocol's generic failure reply.

A mechanism is finished once it returned ``Done`` or ``Failed``; any later call
returns ``Failed``. No method raises on client input.

Wire helpers: ``decode_client_response(line)`` handles base64, ``*`` (cancel) and
``=`` (empty initial response, RFC 4954/5034/4959); ``encode_challenge(data)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stringprep
import time
import unicodedata
from dataclasses import dataclass
from typing import Protocol

# ----------------------------------------------------------------- credentials


@dataclass(frozen=True, slots=True)
class PasswordCredentials:
    """Username and cleartext password (USER/PASS, LOGIN, AUTH PLAIN, AUTH LOGIN)."""

    username: str
    password: str
    authzid: str = ""


@dataclass(frozen=True, slots=True)
class ChallengeCredentials:
    """A keyed digest over a server challenge: CRAM-MD5 (RFC 2195) or APOP (RFC 1939).

    ``kind`` is ``"cram-md5"`` or ``"apop"``; ``verify(secret)`` checks the digest
    against the user's stored plaintext-equivalent secret in constant time.
    """

    username: str
    challenge: bytes
    response: str
    kind: str

    def verify(self, secret: str) -> bool:
        """True when ``response`` is the digest of ``challenge`` under ``secret``."""
        if self.kind == "cram-md5":
            expected = cram_md5_digest(self.challenge, secret)
        elif self.kind == "apop":
            expected = apop_digest(self.challenge, secret)
        else:
            return False
        # Digests are ASCII hex; compare bytes so odd client text cannot raise.
        given = self.response.strip().lower().encode("utf-8", "replace")
        return hmac.compare_digest(expected.encode("ascii"), given)


@dataclass(frozen=True, slots=True)
class ScramVerified:
    """The client proved knowledge of the password against stored SCRAM keys."""

    username: str
    authzid: str = ""


Credentials = PasswordCredentials | ChallengeCredentials | ScramVerified


def cram_md5_digest(challenge: bytes, secret: str) -> str:
    """RFC 2195 §2: lowercase hex HMAC-MD5 of the challenge keyed by the secret."""
    return hmac.new(secret.encode("utf-8"), challenge, "md5").hexdigest()


def apop_digest(timestamp: bytes, secret: str) -> str:
    """RFC 1939 §7: lowercase hex MD5 of the greeting timestamp, then the secret."""
    # MD5 is what the protocol mandates, not our choice.
    digest = hashlib.md5(timestamp + secret.encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()


def make_challenge(hostname: str) -> bytes:
    """A fresh ``<pid.random.time@hostname>`` string for CRAM-MD5 and the APOP banner.

    RFC 2195 §2 / RFC 1939 §7: unique per use, so a captured digest cannot be replayed.
    """
    token = f"<{os.getpid()}.{secrets.randbelow(10**12)}.{int(time.time())}@{hostname}>"
    return token.encode("utf-8")


# ----------------------------------------------------------------- SCRAM keys

SCRAM_SHA_256 = "SCRAM-SHA-256"
DEFAULT_SCRAM_ITERATIONS = 4096  # RFC 7677 §4: at least 4096
_SHA256_SIZE = 32


@dataclass(frozen=True, slots=True)
class ScramKeys:
    """RFC 5802/7677 stored keys: what the server keeps instead of a password."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def encode(self) -> str:
        """``SCRAM-SHA-256$<iterations>$<b64 salt>$<b64 StoredKey>$<b64 ServerKey>``."""
        fields = (self.salt, self.stored_key, self.server_key)
        encoded = "$".join(base64.b64encode(f).decode("ascii") for f in fields)
        return f"{SCRAM_SHA_256}${self.iterations}${encoded}"

    @classmethod
    def decode(cls, text: str) -> ScramKeys:
        """Parse :meth:`encode` output; ``ValueError`` when it is not well formed."""
        parts = text.split("$")
        if len(parts) != 5 or parts[0] != SCRAM_SHA_256:
            raise ValueError("not a SCRAM-SHA-256 key record")
        count = parts[1]
        if not (count.isascii() and count.isdigit()) or int(count) < 1:
            raise ValueError("bad SCRAM iteration count")
        try:
            salt, stored, server = (base64.b64decode(p, validate=True) for p in parts[2:])
        except (binascii.Error, ValueError) as exc:
            raise ValueError("bad base64 in SCRAM key record") from exc
        if not salt or len(stored) != _SHA256_SIZE or len(server) != _SHA256_SIZE:
            raise ValueError("bad SCRAM key sizes")
        return cls(salt, int(count), stored, server)


def derive_scram_keys(
    password: str, salt: bytes | None = None, iterations: int = DEFAULT_SCRAM_ITERATIONS
) -> ScramKeys:
    """Derive SCRAM-SHA-256 keys (random 16-byte salt when none is given)."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    if salt is None:
        salt = secrets.token_bytes(16)
    salted = scram_salted_password(password, salt, iterations)
    return scram_keys_from_salted(salted, salt, iterations)


def scram_keys_from_salted(salted_password: bytes, salt: bytes, iterations: int) -> ScramKeys:
    """RFC 5802 §3: StoredKey := H(HMAC(SaltedPassword, "Client Key")) and ServerKey."""
    client_key = _hmac(salted_password, b"Client Key")
    return ScramKeys(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=_hmac(salted_password, b"Server Key"),
    )


def scram_salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 §3 ``SaltedPassword := Hi(Normalize(password), salt, i)``."""
    normalized = saslprep(password).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", normalized, salt, iterations)


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a password, or the text unchanged when it is prohibited.

    Falling back to the raw string (instead of refusing) keeps odd legacy passwords
    usable; the server and our client make the same choice so keys still match.
    """
    if text.isascii() and all(" " <= ch <= "~" for ch in text):
        return text  # printable ASCII is already prepared
    # RFC 4013 §2.1: non-ASCII spaces map to SPACE, "mapped to nothing" chars vanish.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)  # RFC 4013 §2.2
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,  # RFC 4013 §2.5: unassigned code points
    )
    if any(check(ch) for ch in prepared for check in prohibited):
        return text
    # RFC 3454 §6: bidirectional text rules.
    if any(stringprep.in_table_d1(ch) for ch in prepared):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            return text
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            return text
    return prepared


def escape_saslname(name: str) -> str:
    """RFC 5802 §5.1: ``=`` becomes ``=3D`` and ``,`` becomes ``=2C``."""
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_saslname(text: str) -> str | None:
    """Inverse of :func:`escape_saslname`; None for an empty or badly escaped name."""
    out: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == "=":
            escape = text[index : index + 3]
            if escape == "=2C":
                out.append(",")
            elif escape == "=3D":
                out.append("=")
            else:
                return None  # RFC 5802 §5.1: any other "=" is invalid-encoding
            index += 3
        else:
            out.append(ch)
            index += 1
    return "".join(out) or None


def is_scram_nonce(nonce: str) -> bool:
    """RFC 5802 §7 ``printable``: %x21-2B / %x2D-7E, at least one character."""
    return bool(nonce) and all("!" <= ch <= "~" and ch != "," for ch in nonce)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, "sha256").digest()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def scram_client_proof(salted_password: bytes, auth_message: bytes) -> bytes:
    """RFC 5802 §3: ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage)."""
    client_key = _hmac(salted_password, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    return _xor(client_key, _hmac(stored_key, auth_message))


def scram_server_signature(server_key: bytes, auth_message: bytes) -> bytes:
    """RFC 5802 §3: ServerSignature = HMAC(ServerKey, AuthMessage)."""
    return _hmac(server_key, auth_message)


# ----------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client as a continuation and wait for its response."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NeedScramKeys:
    """Look up the stored SCRAM keys of ``username`` and call ``provide_keys``."""

    username: str


@dataclass(frozen=True, slots=True)
class Done:
    """The exchange is complete; check ``credentials`` with the Authenticator."""

    credentials: Credentials


@dataclass(frozen=True, slots=True)
class Failed:
    """The exchange failed; ``reason`` is for the log, never for the client."""

    reason: str


Step = Challenge | NeedScramKeys | Done | Failed


class ServerMechanism(Protocol):
    """One server-side SASL exchange (RFC 4422 §5); a fresh object per AUTH command."""

    name: str

    def start(self, initial: bytes | None) -> Step:
        """Begin; ``initial`` is the initial response (None: the client sent none)."""
        ...

    def respond(self, data: bytes) -> Step:
        """Feed the client's decoded response to the last challenge."""
        ...

    def provide_keys(self, keys: ScramKeys | None) -> Step:
        """Answer ``NeedScramKeys`` (None: unknown user). Only SCRAM asks."""
        ...

    def server_final(self) -> bytes:
        """Additional data with success (SCRAM ``v=...``); b"" for other mechanisms."""
        ...


class _MechanismBase:
    """Shared behaviour: ending the exchange, and the non-SCRAM defaults."""

    _over: bool = False

    def _fail(self, reason: str) -> Failed:
        self._over = True
        return Failed(reason)

    def _done(self, credentials: Credentials) -> Done:
        self._over = True
        return Done(credentials)

    def provide_keys(self, keys: ScramKeys | None) -> Step:
        """Only SCRAM asks for keys."""
        return self._fail("unexpected SCRAM keys")

    def server_final(self) -> bytes:
        """No additional data with success."""
        return b""


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ----------------------------------------------------------------- PLAIN


class PlainMechanism(_MechanismBase):
    """RFC 4616 PLAIN: ``[authzid] NUL authcid NUL passwd`` in UTF-8."""

    name = "PLAIN"

    def __init__(self) -> None:
        self._started = False

    def start(self, initial: bytes | None) -> Step:
        if self._started or self._over:
            return self._fail("already started")
        self._started = True
        if initial is None:
            return Challenge(b"")  # RFC 4616 §2: the server's first challenge is empty
        return self._parse(initial)

    def respond(self, data: bytes) -> Step:
        if not self._started or self._over:
            return self._fail("unexpected response")
        return self._parse(data)

    def _parse(self, message: bytes) -> Step:
        fields = message.split(b"\x00")
        if len(fields) != 3:
            return self._fail("PLAIN message needs exactly two NULs")
        decoded = [_utf8(field) for field in fields]
        authzid, authcid, passwd = decoded
        if authzid is None or authcid is None or passwd is None:
            return self._fail("PLAIN message is not UTF-8")
        if not authcid or not passwd:
            return self._fail("empty PLAIN authcid or password")  # RFC 4616 §2: 1*SAFE
        return self._done(PasswordCredentials(authcid, passwd, authzid))


# ----------------------------------------------------------------- LOGIN


class LoginMechanism(_MechanismBase):
    """The LOGIN mechanism (draft-murchison-sasl-login): username, then password."""

    name = "LOGIN"

    def __init__(self) -> None:
        self._started = False
        self._username: str | None = None

    def start(self, initial: bytes | None) -> Step:
        if self._started or self._over:
            return self._fail("already started")
        self._started = True
        if initial is None:
            return Challenge(b"Username:")
        return self._take_username(initial)  # some clients send the username at once

    def respond(self, data: bytes) -> Step:
        if not self._started or self._over:
            return self._fail("unexpected response")
        if self._username is None:
            return self._take_username(data)
        password = _utf8(data)
        if password is None:
            return self._fail("LOGIN password is not UTF-8")
        if not password:
            return self._fail("empty LOGIN password")
        return self._done(PasswordCredentials(self._username, password))

    def _take_username(self, data: bytes) -> Step:
        username = _utf8(data)
        if username is None:
            return self._fail("LOGIN username is not UTF-8")
        if not username:
            return self._fail("empty LOGIN username")
        self._username = username
        return Challenge(b"Password:")


# ----------------------------------------------------------------- CRAM-MD5

_HEX = frozenset("0123456789abcdefABCDEF")


class CramMD5Mechanism(_MechanismBase):
    """RFC 2195 CRAM-MD5: a timestamp challenge, answered by ``user SP hex-digest``."""

    name = "CRAM-MD5"

    def __init__(self, hostname: str, *, challenge: bytes | None = None) -> None:
        """``challenge`` fixes the timestamp; tests only."""
        self._challenge = challenge if challenge is not None else make_challenge(hostname)
        self._started = False

    def start(self, initial: bytes | None) -> Step:
        if self._started or self._over:
            return self._fail("already started")
        self._started = True
        if initial is not None:
            # RFC 4422 §3.3: the mechanism has no initial response.
            return self._fail("CRAM-MD5 takes no initial response")
        return Challenge(self._challenge)

    def respond(self, data: bytes) -> Step:
        if not self._started or self._over:
            return self._fail("unexpected response")
        text = _utf8(data)
        if text is None:
            return self._fail("CRAM-MD5 response is not UTF-8")
        username, space, digest = text.rpartition(" ")
        if not space or not username:
            return self._fail("CRAM-MD5 response needs a username")
        if len(digest) != 32 or not set(digest) <= _HEX:
            return self._fail("CRAM-MD5 digest is not 32 hex digits")
        return self._done(
            ChallengeCredentials(username, self._challenge, digest.lower(), "cram-md5")
        )


# ----------------------------------------------------------------- SCRAM-SHA-256

# Keys for unknown users are derived from this, so every process answers the same
# username with the same salt for its lifetime (RFC 5802 §9: do not reveal which
# usernames exist).
_FAKE_KEY_SECRET = secrets.token_bytes(32)


def _fake_scram_keys(username: str) -> ScramKeys:
    seed = username.encode("utf-8")
    return ScramKeys(
        salt=_hmac(_FAKE_KEY_SECRET, b"salt\x00" + seed)[:16],
        iterations=DEFAULT_SCRAM_ITERATIONS,
        stored_key=_hmac(_FAKE_KEY_SECRET, b"stored\x00" + seed),
        server_key=_hmac(_FAKE_KEY_SECRET, b"server\x00" + seed),
    )


class ScramSHA256Mechanism(_MechanismBase):
    """RFC 5802 + RFC 7677 SCRAM-SHA-256 without channel binding."""

    name = SCRAM_SHA_256

    def __init__(self, *, server_nonce: str | None = None) -> None:
        """``server_nonce`` fixes the server's nonce part; tests only."""
        if server_nonce is not None and not is_scram_nonce(server_nonce):
            raise ValueError("server nonce must be printable without commas")
        self._server_nonce = server_nonce or secrets.token_urlsafe(24)
        self._state = "new"
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._username = ""
        self._authzid = ""
        self._keys: ScramKeys | None = None
        self._known = False
        self._signature = b""

    def start(self, initial: bytes | None) -> Step:
        if self._state != "new":
            return self._fail("already started")
        if initial is None:
            self._state = "client-first"
            return Challenge(b"")  # RFC 5802 §5: the client speaks first
        return self._client_first(initial)

    def respond(self, data: bytes) -> Step:
        if self._state == "client-first":
            return self._client_first(data)
        if self._state == "client-final":
            return self._client_final(data)
        return self._fail("unexpected response")

    def provide_keys(self, keys: ScramKeys | None) -> Step:
        if self._state != "keys":
            return self._fail("unexpected SCRAM keys")
        self._known = keys is not None
        # RFC 5802 §9: carry on with fake keys; the proof check fails later.
        self._keys = keys if keys is not None else _fake_scram_keys(self._username)
        self._nonce += self._server_nonce
        salt = base64.b64encode(self._keys.salt).decode("ascii")
        self._server_first = f"r={self._nonce},s={salt},i={self._keys.iterations}"
        self._state = "client-final"
        return Challenge(self._server_first.encode("ascii"))

    def server_final(self) -> bytes:
        if not self._signature:
            return b""
        return b"v=" + base64.b64encode(self._signature)

    def _fail(self, reason: str) -> Failed:
        self._state = "over"
        return super()._fail(reason)

    def _client_first(self, data: bytes) -> Step:
        text = _utf8(data)
        if text is None:
            return self._fail("client-first is not UTF-8")
        parts = text.split(",", 2)
        if len(parts) != 3:
            return self._fail("client-first is malformed")
        flag, authzid_attr, bare = parts
        # RFC 5802 §7 gs2-cbind-flag: we do not offer -PLUS, so "y" is fine.
        if flag.startswith("p="):
            return self._fail("channel binding is not supported")
        if flag not in ("n", "y"):
            return self._fail("bad gs2 channel-binding flag")
        if authzid_attr:
            if not authzid_attr.startswith("a="):
                return self._fail("bad gs2 authzid")
            authzid = unescape_saslname(authzid_attr[2:])
            if authzid is None:
                return self._fail("bad gs2 authzid encoding")
            self._authzid = authzid
        attrs = bare.split(",")
        if attrs[0].startswith("m="):
            return self._fail("mandatory SCRAM extension not supported")  # RFC 5802 §5.1
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            return self._fail("client-first-message-bare is malformed")
        username = unescape_saslname(attrs[0][2:])
        if username is None:
            return self._fail("bad SCRAM username encoding")
        nonce = attrs[1][2:]
        if not is_scram_nonce(nonce):
            return self._fail("bad SCRAM client nonce")
        self._gs2_header = f"{flag},{authzid_attr},"
        self._client_first_bare = bare
        self._username = username
        self._nonce = nonce
        self._state = "keys"
        return NeedScramKeys(username)

    def _client_final(self, data: bytes) -> Step:
        text = _utf8(data)
        if text is None:
            return self._fail("client-final is not UTF-8")
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            return self._fail("client-final has no proof")
        attrs = without_proof.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("c=") or not attrs[1].startswith("r="):
            return self._fail("client-final is malformed")
        binding = _b64(attrs[0][2:])
        if binding != self._gs2_header.encode("utf-8"):
            return self._fail("channel binding data does not match the gs2 header")
        if attrs[1][2:] != self._nonce:
            return self._fail("SCRAM nonce mismatch")
        proof = _b64(proof_b64)
        if proof is None or len(proof) != _SHA256_SIZE:
            return self._fail("bad SCRAM proof encoding")
        keys = self._keys
        if keys is None:  # pragma: no cover - the state machine sets keys first
            return self._fail("no SCRAM keys")
        auth_message = ",".join(
            (self._client_first_bare, self._server_first, without_proof)
        ).encode("utf-8")
        client_signature = _hmac(keys.stored_key, auth_message)
        client_key = _xor(proof, client_signature)
        matches = hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key)
        if not (matches and self._known):
            return self._fail("invalid SCRAM proof")
        self._signature = scram_server_signature(keys.server_key, auth_message)
        return self._done(ScramVerified(self._username, self._authzid))


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


# ----------------------------------------------------------------- registry

_ALL_MECHANISMS = (SCRAM_SHA_256, "PLAIN", "LOGIN", "CRAM-MD5")


def server_mechanism(
    name: str, hostname: str, *, allow_plaintext_equivalent: bool
) -> ServerMechanism | None:
    """A fresh mechanism for ``name`` (any case); None when unknown or disabled.

    Whether PLAIN/LOGIN are allowed without TLS is the adapter's policy, because it
    answers with its own reply code (RFC 4954 §4 ``538 5.7.11``).
    """
    upper = name.upper()
    if upper == SCRAM_SHA_256:
        return ScramSHA256Mechanism()
    if upper == "PLAIN":
        return PlainMechanism()
    if upper == "LOGIN":
        return LoginMechanism()
    if upper == "CRAM-MD5" and allow_plaintext_equivalent:
        return CramMD5Mechanism(hostname)
    return None


def advertised_mechanisms(
    *, secure: bool, allow_plaintext_equivalent: bool, allow_plaintext_without_tls: bool
) -> list[str]:
    """Mechanism names to advertise, strongest first."""
    offered = [SCRAM_SHA_256]
    if secure or allow_plaintext_without_tls:
        offered += ["PLAIN", "LOGIN"]
    if allow_plaintext_equivalent:
        offered.append("CRAM-MD5")
    return [name for name in _ALL_MECHANISMS if name in offered]


# ----------------------------------------------------------------- wire helpers


class SASLMalformed(ValueError):
    """A client response line is not valid base64 (RFC 4954 §4: ``501 5.5.2``)."""


class SASLCancelled(Exception):
    """The client answered a challenge with ``*`` (RFC 4422 §3.5: abort)."""


def decode_client_response(line: bytes) -> bytes:
    """Decode one client response line (without CRLF) to mechanism data.

    ``*`` raises :class:`SASLCancelled`; ``=`` is an empty initial response
    (RFC 4954 §4, RFC 5034 §4, RFC 4959 §3); an empty line is empty data.
    """
    text = line.strip(b" \t\r\n")
    if text == b"*":
        raise SASLCancelled
    if text == b"=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SASLMalformed("invalid base64 in SASL response") from exc


def encode_challenge(data: bytes) -> bytes:
    """Base64 text of a challenge; b"" stays b"" (sent as ``334 `` or ``+ ``)."""
    return base64.b64encode(data)
