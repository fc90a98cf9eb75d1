"""Server TLS: load the admin's certificate chain, or make a self-signed one on first run.

The first-run certificate lets STARTTLS and the implicit-TLS ports work out of the box
(issue #3); an admin replaces it by naming PEM files in tap.conf ``[tls]``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import ssl

from vpop3d.config import BootConfig


class TLSConfigError(Exception):
    """The certificate or key can't be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    certificate: Path
    key: Path
    self_signed: bool


def ensure_self_signed(directory: Path, hostname: str) -> TLSFiles:
    """Create ``directory/selfsigned.{crt,key}`` for ``hostname`` unless present."""
    cert_path = directory / "selfsigned.crt"
    key_path = directory / "selfsigned.key"
    if cert_path.exists() and key_path.exists():
        return TLSFiles(cert_path, key_path, True)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp_key = key_path.with_suffix(".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    os.replace(tmp_key, key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TLSFiles(cert_path, key_path, True)


INSTALLED_CERT = "installed.crt"  # written by the web admin's certificate page
INSTALLED_KEY = "installed.key"


def tls_files(config: BootConfig) -> TLSFiles:
    """tap.conf's [tls] files, else the chain pasted in the web admin, else self-signed."""
    if config.tls.certificate is not None and config.tls.key is not None:
        return TLSFiles(config.tls.certificate, config.tls.key, False)
    installed = config.tls_dir / INSTALLED_CERT, config.tls_dir / INSTALLED_KEY
    if installed[0].exists() and installed[1].exists():
        return TLSFiles(installed[0], installed[1], False)
    return ensure_self_signed(config.tls_dir, config.hostname)


def context_factory(files: TLSFiles, min_version: str = "1.2") -> ssl.CertificateOptions:
    """Twisted CertificateOptions for the chain in ``files`` (leaf first, then CAs)."""
    try:
        chain_pem = files.certificate.read_bytes()
        key_pem = files.key.read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise TLSConfigError(f"{files.certificate}: not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TLSConfigError(f"{files.key}: not an unencrypted PEM private key") from None
    if not certs:
        raise TLSConfigError(f"{files.certificate}: no certificate in the file")
    # pyOpenSSL >= 24.3 takes cryptography objects directly (its own X509 is deprecated).
    leaf, extra = certs[0], certs[1:]
    minimum = ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    try:
        return ssl.CertificateOptions(
            # Twisted's stubs still name pyOpenSSL's types; the runtime takes these.
            privateKey=key,  # type: ignore[arg-type]
            certificate=leaf,  # type: ignore[arg-type]
            extraCertChain=extra,  # type: ignore[arg-type]
            raiseMinimumTo=minimum,
        )
    except (SSL.Error, ValueError) as exc:
        raise TLSConfigError(
            f"{files.certificate}: certificate and key do not match ({exc})"
        ) from None


def describe(transport: object) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384`` for a TLS transport, "" otherwise (Received:)."""
    connection = getattr(transport, "getHandle", lambda: None)()
    if connection is None or not hasattr(connection, "get_protocol_version_name"):
        return ""
    try:
        return f"{connection.get_protocol_version_name()} {connection.get_cipher_name()}"
    except SSL.Error:
        return ""
