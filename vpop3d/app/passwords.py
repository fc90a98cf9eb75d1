"""Password storage: argon2id for logins, SCRAM keys, and the optional plain secret.

One call, :func:`secrets_for`, derives every stored form from a new password so that
the CLI, the web admin and the password service all store the same things.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
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


class VerifiedCache:
    """Remembers recent successful argon2 checks for a few minutes.

    Mail clients log in again every few minutes (POP3 polls, IMAP reconnects); a
    fresh argon2 run each time would make logins the server's main CPU cost. An
    entry is keyed by the stored hash and an HMAC of the password under a
    per-process random key, so nothing reusable is kept, a password change
    (new stored hash) misses the cache, and wrong passwords are never cached.
    """

    def __init__(self, ttl: float = 300.0, size: int = 10_000) -> None:
        self._ttl = ttl
        self._size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, stored_hash: str, password: str) -> bytes:
        message = stored_hash.encode() + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verify(self, stored_hash: str, password: str) -> bool:
        digest = self._digest(stored_hash, password)
        now = time.monotonic()
        with self._lock:
            expires = self._entries.get(digest)
            if expires is not None and expires > now:
                return True
        if not verify_password(stored_hash, password):
            return False
        with self._lock:
            self._entries[digest] = now + self._ttl
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return True


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
