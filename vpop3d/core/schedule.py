"""The Connector Schedule: which Connections run in a given minute (seed-3 §17).

Pure: items and a local wall-clock minute in, connection ids out. The scheduler
works at minute resolution; "every N minutes between S and E" fires at minutes t
with ``S <= t <= E`` and ``(t - S) % N == 0`` (E inclusive); "once at T" fires at T.
A Deny item firing in the same minute blocks its connections, or all of them when
it names none (seed-3 §17.2 proposal).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DAY_NAMES = ("Su", "M", "Tu", "W", "Th", "F", "Sa")  # seed-3 §17.4, bit 0 = Sunday
EVERY_DAY = 0b1111111
WEEKDAYS = 0b0111110


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    name: str = ""
    enabled: bool = True
    deny: bool = False
    use_default: bool = True
    connection_ids: tuple[int, ...] = ()
    once: bool = False
    interval: int = 10  # minutes
    start: int = 0  # minute of day
    end: int = 23 * 60
    min_queued: int = 0  # "if at least M messages are waiting to be sent"
    days: int = EVERY_DAY


def fires(item: ScheduleItem, minute_of_day: int, weekday_sun0: int) -> bool:
    """Does ``item`` fire at this minute of this day (0 = Sunday)?"""
    if not item.enabled or not item.days & (1 << weekday_sun0):
        return False
    if item.once:
        return minute_of_day == item.start
    if not item.start <= minute_of_day <= item.end:
        return False
    return (minute_of_day - item.start) % max(item.interval, 1) == 0


def targets(item: ScheduleItem, defaults: Iterable[int]) -> set[int]:
    found = set(item.connection_ids)
    if item.use_default:
        found.update(defaults)
    return found


def due_connections(
    items: Sequence[ScheduleItem],
    minute_of_day: int,
    weekday_sun0: int,
    *,
    defaults: Iterable[int],
    all_ids: Iterable[int],
    queued: int,
) -> set[int]:
    """Connections to run now: the union of firing items minus what Deny items block."""
    default_ids = list(defaults)
    run: set[int] = set()
    blocked: set[int] = set()
    for item in items:
        if not fires(item, minute_of_day, weekday_sun0):
            continue
        if item.deny:
            blocked |= targets(item, default_ids) or set(all_ids)
            continue
        # seed-3 §17.2: the threshold counts the whole OutQueue.
        if queued < item.min_queued:
            continue
        run |= targets(item, default_ids)
    return run - blocked


def _clock(minute: int) -> str:
    return f"{minute // 60}:{minute % 60:02d}"


def describe(item: ScheduleItem) -> str:
    """The Description column text (seed-3 §17.4), e.g.
    ``Every 10 minutes between 0:00 and 23:00 on Su,M,Tu,W,Th,F,Sa -``."""
    days = ",".join(name for bit, name in enumerate(DAY_NAMES) if item.days & (1 << bit))
    if item.once:
        text = f"Once at {_clock(item.start)} on {days}"
    else:
        text = (
            f"Every {item.interval} minutes between {_clock(item.start)} and "
            f"{_clock(item.end)} on {days}"
        )
    if item.min_queued > 0:
        verb = "message is" if item.min_queued == 1 else "messages are"
        text += f" if at least {item.min_queued} {verb} waiting to be sent"
    else:
        text += " -"
    return ("Deny: " + text) if item.deny else text


def parse_time(text: str) -> int:
    """``H:MM`` -> minute of day (times cannot span midnight, seed-3 §17.2)."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"bad time {text!r}; use H:MM")
    value = int(hours) * 60 + int(minutes)
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"bad time {text!r}")
    return value


def gap_allows(last_run: float | None, now: float, gap_minutes: int) -> bool:
    """ "If a connection occurred in the last X minutes, don't check" (seed-3 §17.3):
    a gap of exactly X minutes is also suppressed; suppressed runs do not count."""
    if gap_minutes <= 0 or last_run is None:
        return True
    return now - last_run > gap_minutes * 60
