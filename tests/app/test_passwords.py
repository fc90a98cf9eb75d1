"""Password storage and the verified-login cache."""

from __future__ import annotations

from vpop3d.app.passwords import VerifiedCache, hash_password, secrets_for, verify_password
from vpop3d.core.sasl import ScramKeys


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    """Hashes are argon2id and check the password in constant time."""
    stored = hash_password("pencil")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "pencil")
    assert not verify_password(stored, "Pencil")
    assert not verify_password("not a hash", "pencil")


def test_plain_secret_only_kept_when_enabled() -> None:
    """The plaintext-equivalent secret exists only when CRAM-MD5/APOP are enabled."""
    assert secrets_for("pw", keep_plain=False).plain_secret is None
    assert secrets_for("pw", keep_plain=True).plain_secret == "pw"
    ScramKeys.decode(secrets_for("pw", keep_plain=False).scram_sha256)


def test_cache_remembers_success_not_failure_nor_old_hashes() -> None:
    """A verified password is cached; a wrong one never is; a new hash misses the cache."""
    cache = VerifiedCache(ttl=60)
    stored = hash_password("pencil")
    assert cache.verify(stored, "pencil")
    assert cache.verify(stored, "pencil")
    assert not cache.verify(stored, "eraser")
    assert not cache.verify(hash_password("eraser"), "pencil")


def test_cache_entries_expire() -> None:
    """After the TTL the password is checked with argon2 again (and still must match)."""
    cache = VerifiedCache(ttl=0.0)
    stored = hash_password("pencil")
    assert cache.verify(stored, "pencil")
    assert not cache.verify(stored, "wrong")
