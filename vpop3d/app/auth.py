"""Authentication of local users for every protocol (implements ``ports.Authenticator``).

All checks for one attempt, argon2 verification included, run in one database
pool call, so the reactor never waits on a hash. Clients only ever learn that a
login failed; the real reason goes to the security log (seed-5 §6.1 SECURITY.LOG).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from vpop3d.app.passwords import VerifiedCache
from vpop3d.app.settings import Settings
from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import (
    ChallengeCredentials,
    Credentials,
    PasswordCredentials,
    ScramKeys,
)
from vpop3d.ports import LoginContext, Principal
from vpop3d.store import domains, groups, users
from vpop3d.store.db import Database
from vpop3d.store.rows import User

PLAINTEXT_EQUIVALENT = "auth.allow_plaintext_equivalent"


@dataclass(frozen=True, slots=True)
class _Outcome:
    principal: Principal | None
    reason: str


def split_login(conn: Connection, login: str) -> str | None:
    """``fred`` or ``fred@<local domain>`` -> ``fred``; other domains -> None."""
    name, at, domain = login.strip().rpartition("@")
    if not at:
        return login.strip().lower()
    if domains.by_name(conn, domain) is None:
        return None
    return name.lower()


def _account_blocked(conn: Connection, user: User) -> str | None:
    if not user.enabled:
        return "account disabled"
    if user.primary_group_id is not None:
        group = groups.by_id(conn, user.primary_group_id)
        if group is not None and not group.enabled:
            return f"group {group.name} disabled"
    return None


def principal_for(conn: Connection, user: User) -> Principal:
    default = domains.default(conn)
    address = f"{user.name}@{default.name}" if default else user.name
    is_admin = user.is_admin
    if user.primary_group_id is not None:
        group = groups.by_id(conn, user.primary_group_id)
        if group is not None and group.admin is not None and group.force:
            is_admin = group.admin
        elif group is not None and group.admin:
            is_admin = True
    return Principal(user_id=user.id, username=user.name, is_admin=is_admin, address=address)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """What the password check needs, read in one database call."""

    principal: Principal
    stored_hash: str | None  # argon2 hash to verify (PasswordCredentials)
    plain_secret: str | None


def find_candidate(conn: Connection, credentials: Credentials, service: str) -> _Candidate | str:
    """The account the credentials name, or the reason it cannot log in (pool thread)."""
    name = split_login(conn, credentials.username)
    if name is None:
        return "not a local domain"
    user = users.by_name(conn, name)
    if user is None:
        return "unknown user"
    blocked = _account_blocked(conn, user)
    # Anti-lockout (seed-2 §3.1): a disabled administrator may still log in to the
    # web admin, to re-enable themselves; mail protocols stay refused.
    if blocked and not (service == "web" and user.is_admin):
        return blocked
    stored = user.password_hash
    if service == "web" and user.webmail_password_hash:
        stored = user.webmail_password_hash
    return _Candidate(principal_for(conn, user), stored, user.plain_secret)


_verified = VerifiedCache()


def verify(candidate: _Candidate | str, credentials: Credentials) -> _Outcome:
    """The CPU-bound half of a login: argon2 or digest check (CPU pool thread)."""
    if isinstance(candidate, str):
        return _Outcome(None, candidate)
    if isinstance(credentials, PasswordCredentials):
        if candidate.stored_hash is None or not _verified.verify(
            candidate.stored_hash, credentials.password
        ):
            return _Outcome(None, "bad password")
    elif isinstance(credentials, ChallengeCredentials) and not (
        candidate.plain_secret and credentials.verify(candidate.plain_secret)
    ):
        return _Outcome(None, f"bad {credentials.kind} response")
    # ScramVerified: the proof was already checked against the stored keys.
    return _Outcome(candidate.principal, "ok")


def _scram_keys(conn: Connection, login: str) -> ScramKeys | None:
    name = split_login(conn, login)
    user = users.by_name(conn, name) if name else None
    if user is None or not user.scram_sha256 or _account_blocked(conn, user):
        return None
    return ScramKeys.decode(user.scram_sha256)


class AccountAuthenticator:
    """``ports.Authenticator`` over the users table."""

    _log = Logger(namespace="vpop3d.security")

    def __init__(self, database: Database, settings: Settings) -> None:
        self._db = database
        self._settings = settings

    def authenticate(self, credentials: Credentials, context: LoginContext) -> Deferred[Principal]:
        def decide(outcome: _Outcome) -> Principal:
            if outcome.principal is None:
                self._log.info(
                    "login failed: {service} {peer} user={user!r}: {reason}",
                    service=context.service,
                    peer=context.peer_ip,
                    user=credentials.username,
                    reason=outcome.reason,
                )
                raise LoginFailed()
            self._log.info(
                "login ok: {service} {peer} user={user}",
                service=context.service,
                peer=context.peer_ip,
                user=outcome.principal.username,
            )
            return outcome.principal

        looked_up = self._db.read(find_candidate, credentials, context.service)
        checked = looked_up.addCallback(lambda found: self._db.call_cpu(verify, found, credentials))
        return checked.addCallback(decide)

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        return self._db.read(_scram_keys, username)

    def plaintext_equivalent_enabled(self) -> bool:
        return self._settings.get_bool(PLAINTEXT_EQUIVALENT, False)
