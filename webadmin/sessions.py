"""Web login sessions: random tokens in an HttpOnly cookie, kept in server memory.

A session remembers who logged in and carries the CSRF token every state-changing
request must echo. "Remember me next time I connect" (seed-1 §3) makes the cookie
persistent; otherwise it dies with the browser and after an idle timeout.
Sessions do not survive a restart: users log in again, which is the safe default.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReactorTime

SESSION_COOKIE = b"vpop3d_session"
LOGIN_COOKIE = b"vpop3d_login"  # pre-login token: proves cookies work, blocks login CSRF
IDLE_TIMEOUT = 8 * 3600.0
REMEMBER_FOR = 30 * 24 * 3600.0
SWEEP_AT = 1000  # sessions held before expired ones are swept at the next login


@dataclass(slots=True)
class Session:
    token: str
    username: str
    persistent: bool
    created: float
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) for next page
    wizard: Any = None  # the Setup Wizard's answers until Finish (never stored before)
    wizard_skipped: bool = False

    def check_csrf(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(self.csrf, offered)


class SessionStore:
    """Sessions by token; expired ones are dropped when seen."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, username: str, *, persistent: bool) -> Session:
        now = self._clock.seconds()
        if len(self._sessions) >= SWEEP_AT:
            for token in list(self._sessions):
                self.get(token)  # drops it if expired
        token = secrets.token_urlsafe(32)
        session = Session(token, username, persistent, now, now)
        self._sessions[token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock.seconds()
        expired = (
            now - session.created > REMEMBER_FOR
            if session.persistent
            else now - session.last_seen > IDLE_TIMEOUT
        )
        if expired:
            del self._sessions[token]
            return None
        session.last_seen = now
        return session

    def __len__(self) -> int:
        return len(self._sessions)

    def end(self, token: str) -> None:
        self._sessions.pop(token, None)

    def end_user(self, username: str) -> None:
        """Log a deleted user out everywhere."""
        for token in [t for t, s in self._sessions.items() if s.username == username]:
            del self._sessions[token]

    def max_age(self, session: Session) -> int | None:
        return int(REMEMBER_FOR) if session.persistent else None
