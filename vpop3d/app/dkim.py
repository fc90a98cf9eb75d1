"""DKIM signing of outgoing mail per local domain (RFC 6376), with dkimpy.

Keys live in ``<data dir>/dkim/<domain>.key`` (PEM, made by ``vpop3d dkim keygen``)
with the selector in ``<domain>.selector``. A domain without a key is sent
unsigned. The signature covers the usual identity headers, so forwarding through
lists that rewrite Subject still breaks it, as everywhere.
"""

from __future__ import annotations

import base64
from pathlib import Path

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.logger import Logger

from vpop3d.app.settings import Settings

DKIM_ENABLED = "dkim.enabled"  # default True: sign where a key exists
DEFAULT_SELECTOR = "vpop3d"
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"in-reply-to",
    b"references",
]


class DKIMSigner:
    """``sign(message, domain)`` prepends a DKIM-Signature when ``domain`` has a key."""

    _log = Logger()

    def __init__(self, keys_dir: Path, settings: Settings | None = None) -> None:
        self._dir = keys_dir
        self._settings = settings
        self._cache: dict[str, tuple[float, bytes, bytes] | None] = {}

    def _key(self, domain: str) -> tuple[bytes, bytes] | None:
        path = self._dir / f"{domain}.key"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._cache.get(domain)
        if cached is None or cached[0] != mtime:
            selector_file = self._dir / f"{domain}.selector"
            selector = (
                selector_file.read_text().strip() if selector_file.exists() else DEFAULT_SELECTOR
            )
            cached = (mtime, path.read_bytes(), selector.encode())
            self._cache[domain] = cached
        return cached[1], cached[2]

    def sign(self, message: bytes, domain: str) -> bytes:
        if self._settings is not None and not self._settings.get_bool(DKIM_ENABLED, True):
            return message
        if not domain or "/" in domain or domain.startswith("."):
            return message
        key = self._key(domain)
        if key is None:
            return message
        private, selector = key
        try:
            signature = dkim.sign(
                message,
                selector,
                domain.encode(),
                private,
                include_headers=SIGNED_HEADERS,
                linesep=b"\r\n",
            )
        except Exception as exc:  # noqa: BLE001  a bad key must not stop mail; send unsigned
            self._log.error("DKIM signing for {domain} failed: {exc}", domain=domain, exc=exc)
            return message
        return bytes(signature) + message


def keygen(keys_dir: Path, domain: str, selector: str = DEFAULT_SELECTOR, bits: int = 2048) -> str:
    """Make a key pair for ``domain``; returns the DNS TXT record to publish."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    path = keys_dir / f"{domain}.key"
    path.write_bytes(pem)
    path.chmod(0o600)
    (keys_dir / f"{domain}.selector").write_text(selector + "\n")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return dns_record(domain, selector, public)


def dns_record(domain: str, selector: str, public_der: bytes) -> str:
    """``<selector>._domainkey.<domain>. IN TXT "v=DKIM1; k=rsa; p=..."`` (RFC 6376 §3.6.1)."""
    value = f"v=DKIM1; k=rsa; p={base64.b64encode(public_der).decode()}"
    # TXT strings are at most 255 octets each (RFC 1035 §3.3.14).
    chunks = " ".join(f'"{value[i : i + 250]}"' for i in range(0, len(value), 250))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"
