"""Rate limits, AUTH-failure bans, IDS scoring and session slots (seed-4 §7.5, §7.10)."""

from __future__ import annotations

import pytest

from vpop3d.core.throttle import (
    FailureBan,
    IDSEvent,
    IDSScorer,
    RateLimiter,
    SessionSlots,
    TokenBucket,
)


def test_token_bucket_burst_then_rate() -> None:
    """A bucket allows its burst at once, then refills at its rate."""
    bucket = TokenBucket(rate=1.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.5)
    assert bucket.take(1.0)


def test_rate_limiter_per_key_and_prune() -> None:
    """Keys are limited independently and idle keys are forgotten."""
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.allow("a", 0)
    assert limiter.allow("a", 0)
    assert not limiter.allow("a", 0)
    assert limiter.allow("b", 0)
    limiter.prune(10.0)
    assert len(limiter) == 0
    assert RateLimiter(rate=0, burst=0).allow("x", 0)


def test_failure_ban() -> None:
    """N failures inside the window ban the IP for the configured time."""
    ban = FailureBan(threshold=3, window=60, ban_seconds=300)
    assert not ban.record_failure("192.0.2.1", 0)
    assert not ban.record_failure("192.0.2.1", 10)
    assert ban.record_failure("192.0.2.1", 20)
    assert ban.banned_until("192.0.2.1", 21) == 320
    assert ban.banned_until("192.0.2.2", 21) is None
    assert ban.banned_until("192.0.2.1", 320) is None


def test_failure_ban_window_slides() -> None:
    """Failures older than the window do not count."""
    ban = FailureBan(threshold=3, window=60, ban_seconds=300)
    ban.record_failure("ip", 0)
    ban.record_failure("ip", 10)
    assert not ban.record_failure("ip", 100)
    ban.record_success("ip")
    assert not ban.record_failure("ip", 101)


def test_ids_blocks_at_next_connection_only() -> None:
    """seed-4 check 40: 20 AUTH failures block the next connection, not the session."""
    ids = IDSScorer()
    for i in range(19):
        ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, float(i))
    assert not ids.check("127.0.0.3", 30.0)
    ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, 31.0)
    assert ids.check("127.0.0.3", 32.0)
    assert not ids.check("127.0.0.4", 32.0)
    assert ids.check("127.0.0.3", 32.0 + 1799)
    assert not ids.check("127.0.0.3", 32.0 + 1801)


def test_ids_never_block() -> None:
    """seed-4 check 41: Never Block wins and removes an existing block."""
    ids = IDSScorer()
    for i in range(20):
        ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, float(i))
    assert ids.check("127.0.0.3", 30.0)
    ids.add_never_block("127.0.0.3")
    assert not ids.blocks
    assert not ids.check("127.0.0.3", 31.0)


def test_ids_manual_block_expires() -> None:
    """seed-4 check 42: a manual /24 block for 1 minute covers .5 and expires."""
    ids = IDSScorer()
    ids.block("127.0.0.0/24", 0.0, 60.0, "manual")
    assert ids.check("127.0.0.5", 30.0)
    assert not ids.check("127.0.0.5", 61.0)


def test_ids_reblock_seed() -> None:
    """seed-4 check 43: after expiry, 4 more failures (800 + 200) re-block."""
    ids = IDSScorer(block_seconds=60.0)
    for i in range(20):
        ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, float(i))
    assert ids.check("127.0.0.3", 20.0)
    for i in range(3):
        ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, 100.0 + i)
    assert not ids.check("127.0.0.3", 110.0)
    ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, 111.0)
    assert ids.check("127.0.0.3", 112.0)


def test_ids_multiplier_change_is_retroactive() -> None:
    """seed-4 check 45: a zero multiplier makes logged failures harmless."""
    ids = IDSScorer()
    for i in range(20):
        ids.record("127.0.0.6", IDSEvent.AUTH_FAILURE, float(i))
    ids.multipliers[IDSEvent.AUTH_FAILURE] = 0
    assert not ids.check("127.0.0.6", 30.0)


def test_ids_events_outside_monitor_period_ignored() -> None:
    """Events older than the monitor period do not count."""
    ids = IDSScorer()
    for i in range(20):
        ids.record("127.0.0.7", IDSEvent.AUTH_FAILURE, float(i))
    assert not ids.check("127.0.0.7", 3600.0 + 20)


def test_session_slots_per_client() -> None:
    """seed-4 check 33: per-client cap, with local (Allow Unauth) clients exempt."""
    slots = SessionSlots(max_total=50, max_per_client=2)
    assert slots.try_open("127.0.0.2")
    assert slots.try_open("127.0.0.2")
    assert not slots.try_open("127.0.0.2")
    assert slots.try_open("127.0.0.2", local=True)
    slots.close("127.0.0.2")
    assert slots.try_open("127.0.0.2")


def test_session_slots_reserved_pool() -> None:
    """seed-4 check 34: total 3 with 2 reserved for 127.0.0.9."""
    slots = SessionSlots(max_total=3, max_per_client=0, reserved_for=["127.0.0.9"], reserved=2)
    assert slots.try_open("127.0.0.1")
    assert not slots.try_open("127.0.0.2")
    assert slots.try_open("127.0.0.9")
    assert slots.try_open("127.0.0.9")
    assert not slots.try_open("127.0.0.9")
    assert slots.open_sessions == 3
    slots.close("127.0.0.1")
    assert slots.try_open("127.0.0.2")


@pytest.mark.parametrize("ip", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_session_slots_close_is_symmetric(ip: str) -> None:
    """Closing gives the slot back, whatever form the IP had."""
    slots = SessionSlots(max_total=1, max_per_client=1)
    assert slots.try_open(ip)
    slots.close("127.0.0.1")
    assert slots.open_sessions == 0
    slots.close("127.0.0.1")
    assert slots.open_sessions == 0


def test_format_ids_line() -> None:
    """seed-4 check 44: the default format gives time - ip - number text - data."""
    from datetime import UTC, datetime

    from vpop3d.core.throttle import DEFAULT_IDS_FORMAT, format_ids_line

    when = datetime(2026, 11, 24, 22, 0, 5, tzinfo=UTC)
    line = format_ids_line(DEFAULT_IDS_FORMAT, when, "127.0.0.3", IDSEvent.AUTH_FAILURE, "fred")
    assert line == "2026-11-24T22:00:05Z - 127.0.0.3 - 0 SMTP authentication failure - fred"
    assert format_ids_line("%I|%e %% %x", when, "::1", IDSEvent.RELAY_DENIED) == "::1|1 % %x"
    assert "\n" not in format_ids_line("%D", when, "ip", IDSEvent.SPAM, "a\r\nb")


def test_ids_prune_forgets_old_state() -> None:
    """prune() drops events and blocks older than the monitor period."""
    ids = IDSScorer(block_seconds=60.0)
    for i in range(20):
        ids.record("127.0.0.3", IDSEvent.AUTH_FAILURE, float(i))
    assert ids.check("127.0.0.3", 20.0)
    ids.prune(20.0 + 3600 + 61)
    assert ids.blocks == []
    assert not ids.check("127.0.0.3", 20.0 + 3600 + 62)


def test_ids_events_per_ip_are_bounded() -> None:
    """A very busy client's event list stays bounded."""
    ids = IDSScorer()
    for i in range(6000):
        ids.record("10.0.0.1", IDSEvent.GOOD_LOCAL_RCPT, float(i))
    assert ids.event_count("10.0.0.1") == 5000
