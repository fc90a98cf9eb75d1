"""Session store and login throttle: expiry, remember-me lifetime, bounded memory."""

from __future__ import annotations

from twisted.internet.task import Clock

from webadmin.security import LoginThrottle, admin_allowed
from webadmin.sessions import IDLE_TIMEOUT, REMEMBER_FOR, SWEEP_AT, SessionStore


def test_idle_session_expires_but_remembered_one_lasts():
    """A normal session ends after the idle timeout; a remembered one lasts 30 days."""
    clock = Clock()
    store = SessionStore(clock)
    short = store.create("fred", persistent=False)
    long = store.create("fred", persistent=True)
    clock.advance(IDLE_TIMEOUT + 1)
    assert store.get(short.token) is None
    assert store.get(long.token) is long
    clock.advance(REMEMBER_FOR)
    assert store.get(long.token) is None


def test_expired_sessions_are_swept():
    """Abandoned sessions do not pile up: they are swept when many are held."""
    clock = Clock()
    store = SessionStore(clock)
    for _ in range(SWEEP_AT):
        store.create("fred", persistent=False)
    clock.advance(IDLE_TIMEOUT + 1)
    store.create("kate", persistent=False)
    assert len(store) == 1


def test_csrf_check_is_exact():
    """Only the session's own token passes."""
    session = SessionStore(Clock()).create("fred", persistent=False)
    assert session.check_csrf(session.csrf)
    assert not session.check_csrf(None)
    assert not session.check_csrf(session.csrf + "x")


def test_throttle_window():
    """Ten failures block the address until they age out of the window."""
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(10):
        throttle.failed("192.0.2.1")
    assert throttle.blocked("192.0.2.1")
    assert not throttle.blocked("192.0.2.2")
    clock.advance(301)
    assert not throttle.blocked("192.0.2.1")


def test_admin_networks():
    """Loopback is always allowed; otherwise the address must be in a listed network."""
    assert admin_allowed("127.0.0.1", ["192.0.2.0/24"])
    assert admin_allowed("::1", ["192.0.2.0/24"])
    assert admin_allowed("192.0.2.9", ["192.0.2.0/24"])
    assert not admin_allowed("198.51.100.1", ["192.0.2.0/24"])
    assert admin_allowed("198.51.100.1", [])
    assert not admin_allowed("not-an-ip", [])
