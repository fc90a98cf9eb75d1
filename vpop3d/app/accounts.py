"""Administration of users, domains and mappings: the use cases behind the CLI and web admin.

Each function runs inside one database transaction (``Database.run_sync`` from the
CLI, ``Database.write`` from the web) and raises :class:`AdminError` with a sentence
an admin can act on when the request is refused; nothing is changed then.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from vpop3d.app.auth import PLAINTEXT_EQUIVALENT
from vpop3d.app.passwords import StoredSecrets, check_password_policy, secrets_for
from vpop3d.store import domains, folders, groups, mappings, messages, settings, users
from vpop3d.store.rows import Domain, Mapping, User

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


class AdminError(Exception):
    """A refused admin request; ``str()`` says why in words an admin can act on."""


@dataclass(frozen=True, slots=True)
class UserSummary:
    name: str
    real_name: str
    enabled: bool
    is_admin: bool
    quota_kb: int
    messages: int


def _check_name(conn: Connection, name: str) -> str:
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise AdminError(
            f"invalid user name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if groups.by_name(conn, name) is not None:
        raise AdminError(f"{name!r} is already the name of a group")
    return name


def _require_user(conn: Connection, name: str) -> User:
    user = users.by_name(conn, name)
    if user is None:
        raise AdminError(f"no such user {name!r}")
    return user


def add_user(
    conn: Connection,
    name: str,
    password: str,
    *,
    real_name: str = "",
    is_admin: bool = False,
    must_change_password: bool = False,
    quota_kb: int = 0,
    hashed: dict[str, StoredSecrets] | None = None,
) -> User:
    """Create a user with an INBOX. ``hashed`` may hold secrets computed before the
    transaction (bulk imports), so slow password hashing does not hold the write lock."""
    name = _check_name(conn, name)
    if users.by_name(conn, name) is not None:
        raise AdminError(f"user {name!r} already exists")
    problem = check_password_policy(password)
    if problem:
        raise AdminError(problem)
    if quota_kb < 0:
        raise AdminError("the quota must be 0 (no limit) or more kB")
    stored = _secrets(conn, password, hashed)
    user = users.add(
        conn,
        name,
        stored.password_hash,
        scram_sha256=stored.scram_sha256,
        plain_secret=stored.plain_secret,
        real_name=real_name,
        is_admin=is_admin,
        must_change_password=must_change_password,
        quota_kb=quota_kb,
    )
    folders.inbox(conn, user.id)
    return user


def _secrets(
    conn: Connection, password: str, hashed: dict[str, StoredSecrets] | None
) -> StoredSecrets:
    keep_plain = bool(settings.get(conn, PLAINTEXT_EQUIVALENT, False))
    found = hashed.get(password) if hashed else None
    if found is not None and (found.plain_secret is not None) == keep_plain:
        return found
    return secrets_for(password, keep_plain=keep_plain)


def set_password(
    conn: Connection,
    name: str,
    password: str,
    *,
    webmail: bool = False,
    hashed: dict[str, StoredSecrets] | None = None,
) -> None:
    user = _require_user(conn, name)
    problem = check_password_policy(password)
    if problem:
        raise AdminError(problem)
    stored = _secrets(conn, password, hashed)
    if webmail:
        users.update_fields(conn, user.id, webmail_password_hash=stored.password_hash)
        return
    users.update_fields(
        conn,
        user.id,
        password_hash=stored.password_hash,
        scram_sha256=stored.scram_sha256,
        plain_secret=stored.plain_secret,
        must_change_password=False,
    )


def update_user(conn: Connection, name: str, /, **changes: Any) -> User:
    """Change real_name, enabled, is_admin or quota_kb, keeping at least one admin."""
    user = _require_user(conn, name)
    allowed = {"real_name", "enabled", "is_admin", "quota_kb", "must_change_password"}
    unknown = set(changes) - allowed
    if unknown:
        raise AdminError(
            f"cannot set {sorted(unknown)[0]!r}; settable: {', '.join(sorted(allowed))}"
        )
    demoting = (
        user.is_admin
        and user.enabled
        and (changes.get("is_admin") is False or changes.get("enabled") is False)
    )
    if demoting and users.count_admins(conn) <= 1:
        raise AdminError(
            f"{user.name!r} is the last administrator; make another user an administrator first"
        )
    if "quota_kb" in changes and int(changes["quota_kb"]) < 0:
        raise AdminError("the quota must be 0 (no limit) or more kB")
    users.update_fields(conn, user.id, **changes)
    updated = users.by_id(conn, user.id)
    assert updated is not None
    return updated


def set_internet_mail(conn: Connection, name: str, *, send: bool, receive: bool) -> User:
    """The Permissions tab's "Allow sending/receiving of Internet mail" (seed-2 §3.9)."""
    user = _require_user(conn, name)
    users.update_fields(conn, user.id, allow_send_internet=send, allow_receive_internet=receive)
    updated = users.by_id(conn, user.id)
    assert updated is not None
    return updated


def delete_user(conn: Connection, name: str, *, acting_user: str | None = None) -> None:
    """Delete a user and their mail (manual L1424: never yourself, never the last admin)."""
    user = _require_user(conn, name)
    if acting_user is not None and acting_user.lower() == user.name:
        raise AdminError("you cannot delete the account you are logged in as")
    if user.is_admin and user.enabled and users.count_admins(conn) <= 1:
        raise AdminError(f"{user.name!r} is the last administrator and cannot be deleted")
    for folder in folders.list_for_user(conn, user.id):
        messages.remove(conn, [m.id for m in messages.in_folder(conn, folder.id)])
    users.remove(conn, user.id)


def list_users(conn: Connection) -> list[UserSummary]:
    result = []
    for user in users.list_all(conn):
        inbox = folders.by_name(conn, user.id, folders.INBOX)
        count = messages.count(conn, inbox.id) if inbox else 0
        result.append(
            UserSummary(
                user.name, user.real_name, user.enabled, user.is_admin, user.quota_kb, count
            )
        )
    return result


def set_plaintext_equivalent(conn: Connection, enabled: bool) -> None:
    """Allow CRAM-MD5/APOP. Secrets are only stored from the next password change on;
    disabling wipes every stored plaintext-equivalent secret at once."""
    settings.put(conn, PLAINTEXT_EQUIVALENT, enabled)
    if not enabled:
        for user in users.list_all(conn):
            if user.plain_secret is not None:
                users.update_fields(conn, user.id, plain_secret=None)


def normalise_domain(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise AdminError(f"{name!r} is not a valid domain name") from None
    if not _DOMAIN.fullmatch(name):
        raise AdminError(f"{name!r} is not a valid domain name")
    return name


def add_domain(conn: Connection, name: str, *, make_default: bool = False) -> Domain:
    name = normalise_domain(name)
    if domains.by_name(conn, name) is not None:
        raise AdminError(f"domain {name!r} is already a local domain")
    return domains.add(conn, name, make_default=make_default)


def delete_domain(conn: Connection, name: str) -> None:
    name = normalise_domain(name)
    found = domains.by_name(conn, name)
    if found is None:
        raise AdminError(f"{name!r} is not a local domain")
    if found.is_default and len(domains.list_all(conn)) > 1:
        raise AdminError(f"{name!r} is the default domain; make another domain the default first")
    domains.remove(conn, name)


def list_domains(conn: Connection) -> list[Domain]:
    return domains.list_all(conn)


def add_mapping(
    conn: Connection, pattern: str, targets: Sequence[str], *, direction: str = "to"
) -> Mapping:
    pattern = pattern.strip()
    cleaned = [t.strip() for t in targets if t.strip()]
    if not pattern or any(c.isspace() for c in pattern):
        raise AdminError("a mapping pattern must be one word, e.g. 'sales' or 'sup*@example.com'")
    if not cleaned:
        raise AdminError("a mapping needs at least one target")
    if direction not in ("to", "from"):
        raise AdminError("direction must be 'to' or 'from'")
    return mappings.add(conn, pattern, cleaned, direction)


def delete_mapping(conn: Connection, pattern_or_id: str) -> int:
    if pattern_or_id.isdigit():
        removed = 1 if mappings.remove(conn, int(pattern_or_id)) else 0
    else:
        removed = mappings.remove_pattern(conn, pattern_or_id.strip())
    if not removed:
        raise AdminError(f"no mapping {pattern_or_id!r}")
    return removed


def list_mappings(conn: Connection) -> list[Mapping]:
    return mappings.list_all(conn)


def set_default_domain(conn: Connection, name: str) -> Domain:
    """Make a local domain the default one (qualifies bare user names, seed-1 §4.7)."""
    name = normalise_domain(name)
    if domains.by_name(conn, name) is None:
        raise AdminError(f"{name!r} is not a local domain")
    domains.set_default(conn, name)
    found = domains.by_name(conn, name)
    assert found is not None
    return found


def require_enabled_admin(conn: Connection) -> None:
    """Refuse (roll back) a change that leaves no enabled administrator (seed-1 §8).

    ``update_user`` counts administrators whether enabled or not, so a series of
    changes (bulk edit) could otherwise disable every one of them.
    """
    if not any(u.is_admin and u.enabled for u in users.list_all(conn)):
        raise AdminError(
            "that would leave no enabled administrator (the last administrator cannot "
            "be disabled); keep at least one administrator enabled"
        )
