"""Checking and installing a pasted TLS certificate chain and key (seed-4 §2, check 38).

Malformed PEM, a key that does not match the first certificate, or an expired
certificate is refused on save with a sentence saying which; nothing is written then.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from vpop3d.tls import INSTALLED_CERT, INSTALLED_KEY

CERT_FILE = INSTALLED_CERT
KEY_FILE = INSTALLED_KEY


class CertificateError(ValueError):
    """The pasted PEM cannot be used; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_after: str
    names: tuple[str, ...]
    chain_length: int
    self_signed: bool


def describe(certs: list[x509.Certificate]) -> CertificateInfo:
    leaf = certs[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n) for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertificateInfo(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_after=leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC"),
        names=names,
        chain_length=len(certs),
        self_signed=leaf.issuer == leaf.subject,
    )


def _public_bytes(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def validate(chain_pem: str, key_pem: str, now: datetime.datetime) -> CertificateInfo:
    """Parse and check a chain (leaf first) and its unencrypted private key."""
    if "-----BEGIN CERTIFICATE-----" not in chain_pem:
        raise CertificateError(
            "The certificate box must hold PEM text starting with -----BEGIN CERTIFICATE-----."
        )
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        raise CertificateError("The certificate chain is not valid PEM.") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        raise CertificateError(
            "The private key is protected by a passphrase; paste an unencrypted key."
        ) from None
    except ValueError:
        raise CertificateError(
            "The private key is not valid PEM (-----BEGIN PRIVATE KEY-----)."
        ) from None
    leaf = certs[0]
    leaf_key = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if _public_bytes(key) != leaf_key:
        raise CertificateError(
            "The private key does not belong to the first certificate of the chain "
            "(put the server's own certificate first)."
        )
    if leaf.not_valid_after_utc < now:
        raise CertificateError("The certificate has expired.")
    return describe(certs)


def install(directory: Path, chain_pem: str, key_pem: str) -> tuple[Path, Path]:
    """Write the checked chain and key (key readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    tmp = key_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key_pem.strip() + "\n")
    os.replace(tmp, key_path)
    tmp = cert_path.with_suffix(".tmp")
    tmp.write_text(chain_pem.strip() + "\n")
    os.replace(tmp, cert_path)
    return cert_path, key_path


def current(path: Path) -> CertificateInfo | None:
    try:
        return describe(x509.load_pem_x509_certificates(path.read_bytes()))
    except (OSError, ValueError):
        return None
