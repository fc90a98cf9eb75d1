"""Password storage: argon2id for logins, SCRAM keys, and the optional plain secret.

One call, :func:`secrets_for`, derives every stored form from a new password so that
the CLI, the web admin and the password service all store the same things.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vpop3d.core.sasl import derive_scram_keys

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True, slots=True)
class StoredSecrets:
    password_hash: str
    scram_sha256: str
    plain_secret: str | None  # only when plaintext-equivalent mechanisms are enabled


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Constant-time check of ``password`` against an argon2 hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def secrets_for(password: str, *, keep_plain: bool) -> StoredSecrets:
    return StoredSecrets(
        password_hash=hash_password(password),
        scram_sha256=derive_scram_keys(password).encode(),
        plain_secret=password if keep_plain else None,
    )


def check_password_policy(password: str) -> str | None:
    """A reason to refuse ``password``, or None."""
    if not password:
        return "the password must not be empty"
    if len(password) > 1024:
        return "the password is longer than 1024 characters"
    if any(ch in password for ch in "\r\n\x00"):
        return "the password must not contain line breaks or NUL"
    return None
