"""Connector Schedule grid, Deny items, thresholds and descriptions (seed-3 §17)."""

from __future__ import annotations

import pytest

from vpop3d.core.schedule import (
    WEEKDAYS,
    ScheduleItem,
    describe,
    due_connections,
    fires,
    parse_time,
)

MONDAY, SATURDAY = 1, 6


def test_every_ten_minutes_on_weekdays_between_nine_and_five() -> None:
    """Check 45: fires 9:00, 9:10 ... 17:00 inclusive, not 17:10, never on Saturday."""
    item = ScheduleItem(interval=10, start=9 * 60, end=17 * 60, days=WEEKDAYS)
    fired = [m for m in range(24 * 60) if fires(item, m, MONDAY)]
    assert fired[0] == 9 * 60
    assert fired[-1] == 17 * 60
    assert len(fired) == 49
    assert 9 * 60 + 5 not in fired
    assert not any(fires(item, m, SATURDAY) for m in range(24 * 60))


def test_deny_item_blocks_the_minute() -> None:
    """Check 46: every 5 minutes plus a Deny every 60 -> 9:55 and 10:05 run, 10:00 does not."""
    items = [
        ScheduleItem(interval=5, start=0, end=23 * 60 + 59),
        ScheduleItem(interval=60, start=0, end=23 * 60 + 59, deny=True, use_default=False),
    ]

    def due(minute: int) -> set[int]:
        return due_connections(items, minute, MONDAY, defaults=[1], all_ids=[1, 2], queued=0)

    assert due(9 * 60 + 55) == {1}
    assert due(10 * 60) == set()
    assert due(10 * 60 + 5) == {1}


def test_named_connections_and_threshold() -> None:
    """Check 47: "once at 8:00 if at least 1 message waiting" runs only with mail queued."""
    item = ScheduleItem(
        once=True, start=8 * 60, min_queued=1, use_default=False, connection_ids=(7,)
    )

    def due(minute: int, queued: int) -> set[int]:
        return due_connections([item], minute, MONDAY, defaults=[1], all_ids=[1, 7], queued=queued)

    assert due(8 * 60, 0) == set()
    assert due(8 * 60, 1) == {7}
    assert due(8 * 60 + 1, 1) == set()


def test_disabled_item_never_fires() -> None:
    """An unticked Enabled box means the item does nothing."""
    assert not fires(ScheduleItem(enabled=False, start=0), 0, MONDAY)


def test_descriptions_are_the_manual_texts() -> None:
    """seed-3 §17.4 exact Description texts."""
    assert (
        describe(ScheduleItem(interval=10, start=0, end=23 * 60))
        == "Every 10 minutes between 0:00 and 23:00 on Su,M,Tu,W,Th,F,Sa -"
    )
    assert (
        describe(ScheduleItem(once=True, start=8 * 60, days=WEEKDAYS, min_queued=1))
        == "Once at 8:00 on M,Tu,W,Th,F if at least 1 message is waiting to be sent"
    )


def test_parse_time() -> None:
    """H:MM parses to a minute of day; junk is refused."""
    assert parse_time("9:05") == 545
    with pytest.raises(ValueError, match="H:MM"):
        parse_time("9")
    with pytest.raises(ValueError, match="bad time"):
        parse_time("24:00")
