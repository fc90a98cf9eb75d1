"""Idle timeout on an injected clock (RFC 1939 §3: at least 10 minutes)."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from tests.proto.pop3.harness import (
    FakeAuthenticator,
    Transcript,
    make_factory,
    sample_maildrops,
)
from vpop3d.ports import Principal


def test_idle_connection_closes_after_ten_minutes_without_reply() -> None:
    """After 600 idle seconds the server closes silently and releases the lock."""
    clock = Clock()
    drops = sample_maildrops()
    t = Transcript(make_factory(maildrops=drops, clock=clock))
    t.login()
    t.send("DELE 1")
    clock.advance(599)
    assert not t.is_closed()
    clock.advance(1)
    assert t.is_closed()
    assert t.take() == ""
    t.protocol.connectionLost()
    assert drops.drops[0].released
    assert len(drops.boxes["fred"]) == 3


def test_activity_restarts_the_idle_timer() -> None:
    """Each command restarts the timer."""
    clock = Clock()
    t = Transcript(make_factory(maildrops=sample_maildrops(), clock=clock))
    t.login()
    clock.advance(500)
    t.expect("NOOP", "+OK")
    clock.advance(500)
    assert not t.is_closed()
    clock.advance(100)
    assert t.is_closed()


def test_configured_timeout_is_used() -> None:
    """A longer configured timeout is honoured."""
    clock = Clock()
    t = Transcript(make_factory(maildrops=sample_maildrops(), clock=clock, idle_timeout=1800.0))
    clock.advance(1799)
    assert not t.is_closed()
    clock.advance(1)
    assert t.is_closed()


def test_no_timeout_while_a_command_is_in_flight() -> None:
    """A slow Authenticator does not make the client look idle."""
    clock = Clock()
    pending: list[Deferred[Principal]] = []
    authenticator = FakeAuthenticator(pending=pending)
    t = Transcript(make_factory(authenticator, sample_maildrops(), clock=clock))
    t.send("USER fred", "PASS letmein")
    clock.advance(3600)
    assert not t.is_closed()
    pending[0].callback(authenticator.principal("fred"))
    clock.advance(599)
    assert not t.is_closed()
    clock.advance(1)
    assert t.is_closed()


def test_connection_lost_while_opening_maildrop_releases_it() -> None:
    """A client that leaves during login does not leave its mailbox locked."""
    pending: list[Deferred[Principal]] = []
    authenticator = FakeAuthenticator(pending=pending)
    drops = sample_maildrops()
    t = Transcript(make_factory(authenticator, drops))
    t.send("USER fred", "PASS letmein")
    t.protocol.connectionLost()
    pending[0].callback(authenticator.principal("fred"))
    assert drops.drops[0].released
    assert "fred" not in drops.locked
