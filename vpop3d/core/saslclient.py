"""Client side of SASL and APOP, for our outbound SMTP client and the POP3 collector.

Every function returns the raw mechanism message; the caller base64-encodes it for
the wire (``AUTH PLAIN <b64>``, a 334/``+`` answer). APOP is not SASL: its digest
goes on the ``APOP`` command line as it is.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from vpop3d.core.sasl import (
    SASLMalformed,
    apop_digest,
    cram_md5_digest,
    escape_saslname,
    is_scram_nonce,
    scram_client_proof,
    scram_keys_from_salted,
    scram_salted_password,
    scram_server_signature,
)

__all__ = [
    "ScramClient",
    "apop_digest",
    "cram_md5_response",
    "plain_response",
]

# A hostile server could ask for a huge PBKDF2 count to burn our CPU.
MAX_SCRAM_ITERATIONS = 1_000_000


def plain_response(username: str, password: str, authzid: str = "") -> bytes:
    """RFC 4616 §2 message ``authzid NUL authcid NUL passwd`` in UTF-8."""
    return f"{authzid}\x00{username}\x00{password}".encode()


def cram_md5_response(username: str, password: str, challenge: bytes) -> bytes:
    """RFC 2195 §2 answer ``user SP hex(HMAC-MD5(password, challenge))``."""
    return f"{username} {cram_md5_digest(challenge, password)}".encode()


class ScramClient:
    """One SCRAM-SHA-256 exchange (RFC 5802 §5, RFC 7677) without channel binding.

    ``first()`` gives the client-first message, ``final(server_first)`` the
    client-final message, ``verify(server_final)`` whether the server knew our keys.
    ``final`` raises :class:`~vpop3d.core.sasl.SASLMalformed` for a bad server-first.
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        authzid: str = "",
        nonce: str | None = None,
    ) -> None:
        """``nonce`` fixes the client nonce; tests only."""
        if nonce is not None and not is_scram_nonce(nonce):
            raise ValueError("nonce must be printable without commas")
        self._password = password
        self._nonce = nonce or secrets.token_urlsafe(24)
        authzid_attr = f"a={escape_saslname(authzid)}" if authzid else ""
        self._gs2_header = f"n,{authzid_attr},"
        self._client_first_bare = f"n={escape_saslname(username)},r={self._nonce}"
        self._expected_signature: bytes | None = None

    def first(self) -> bytes:
        """The client-first message (send as the initial response)."""
        return (self._gs2_header + self._client_first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        """The client-final message with our proof, answering ``server_first``."""
        try:
            text = server_first.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SASLMalformed("server-first is not UTF-8") from exc
        attrs = text.split(",")
        if attrs[0].startswith("m="):
            raise SASLMalformed("mandatory SCRAM extension not supported")
        if len(attrs) < 3 or [a[:2] for a in attrs[:3]] != ["r=", "s=", "i="]:
            raise SASLMalformed("server-first is malformed")
        nonce, salt_b64, count = (a[2:] for a in attrs[:3])
        # RFC 5802 §5.1: the server nonce must extend ours.
        if not nonce.startswith(self._nonce) or not is_scram_nonce(nonce):
            raise SASLMalformed("server nonce does not extend the client nonce")
        if nonce == self._nonce:
            raise SASLMalformed("server added no nonce of its own")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SASLMalformed("bad SCRAM salt") from exc
        if not (count.isascii() and count.isdigit()):
            raise SASLMalformed("bad SCRAM iteration count")
        iterations = int(count)
        if not salt or not 1 <= iterations <= MAX_SCRAM_ITERATIONS:
            raise SASLMalformed("unacceptable SCRAM salt or iteration count")
        binding = base64.b64encode(self._gs2_header.encode()).decode("ascii")
        without_proof = f"c={binding},r={nonce}"
        auth_message = ",".join((self._client_first_bare, text, without_proof)).encode()
        salted = scram_salted_password(self._password, salt, iterations)
        proof = scram_client_proof(salted, auth_message)
        server_key = scram_keys_from_salted(salted, salt, iterations).server_key
        self._expected_signature = scram_server_signature(server_key, auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode()

    def verify(self, server_final: bytes) -> bool:
        """True when ``server_final`` has the signature only a key holder can make."""
        if self._expected_signature is None:
            return False
        attrs = server_final.split(b",")
        if not attrs[0].startswith(b"v="):
            return False  # includes RFC 5802 "e=" server errors
        try:
            signature = base64.b64decode(attrs[0][2:], validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(signature, self._expected_signature)
