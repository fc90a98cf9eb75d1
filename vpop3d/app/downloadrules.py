"""Download Rules (seed-3 §4): one global ordered list, evaluated on the headers
(``TOP n 0``) and pseudo-headers before a message is downloaded.

Pure: rule rows and the message facts in, a :class:`Verdict` out. First matching
rule wins, except Set Header and Continue and the If/Else/EndIf control rules
(§4.1, §4.3). No match means Download (§4.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["DOWNLOADING", "IMMEDIATE_DELETE", "Condition", "Facts", "Rule", "Verdict", "evaluate"]

# Actions that fetch the message (or its headers) and deliver it (seed-3 §4.3 table).
DOWNLOADING = {
    "download",
    "download-and-delete",
    "redirect",
    "redirect-download-delete",
    "copy",
    "copy-download-delete",
    "headers-only",
    "redirect-headers-only",
    "copy-headers-only",
}
# Removed from the server at once, whatever Leave Messages on Server says.
IMMEDIATE_DELETE = {
    "delete-and-warn",
    "delete-silently",
    "download-and-delete",
    "delete-and-warn-other",
    "redirect-download-delete",
    "delete-and-copy-warning",
    "copy-download-delete",
}


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # header name(s) "To,Cc", or a pseudo-header
    op: str = "contains"
    data: str = ""
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: str
    conditions: tuple[Condition, ...] = ()
    match_all: bool = True
    targets: str = ""
    header_line: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rule:
        try:
            raw = json.loads(row.get("conditions") or "[]")
        except ValueError:
            raw = []
        conditions = tuple(
            Condition(
                str(item.get("field", "")),
                str(item.get("op", "contains")).lower(),
                str(item.get("data", "")),
                bool(item.get("not", False)),
            )
            for item in raw
            if isinstance(item, dict)
        )
        return cls(
            name=str(row.get("name") or f"#{row.get('id', '?')}"),
            action=str(row.get("action", "download")).lower(),
            conditions=conditions,
            match_all=bool(row.get("match_all", True)),
            targets=str(row.get("targets") or ""),
            header_line=str(row.get("header_line") or ""),
        )


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule may look at (headers only: the body is not downloaded yet)."""

    headers: list[tuple[str, str]]
    size: int
    collector_name: str
    collector_id: int
    recipients: tuple[str, ...] = ()  # computed recipients after mappings
    valid: int = 0
    invalid: int = 0
    hour_minute: int = 0  # local minute of day
    weekday_sun1: int = 1  # Sunday = 1 ... Saturday = 7 (DayNow)


@dataclass(slots=True)
class Verdict:
    action: str = "download"
    rule: str = ""  # name of the deciding rule, "" for the default
    targets: str = ""
    header_lines: list[str] = field(default_factory=list)  # Set Header lines, added at the end

    @property
    def downloads(self) -> bool:
        return self.action in DOWNLOADING

    @property
    def delete_now(self) -> bool:
        return self.action in IMMEDIATE_DELETE


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def compare(value: str, op: str, data: str) -> bool:
    """§4.5 operators: caseless except regex; numbers compare numerically."""
    if op in ("regex", "regex matches"):
        spec = data.strip()
        flags = 0
        if spec.startswith("/") and spec.rfind("/") > 0:
            end = spec.rfind("/")
            flags = re.IGNORECASE if "i" in spec[end + 1 :] else 0
            spec = spec[1:end]
        try:
            return re.search(spec, value, flags) is not None
        except re.error:
            return False
    left, right = value.casefold(), data.casefold()
    if op in ("equals", "is"):
        return left.strip() == right.strip()
    if op == "not equals":
        return left.strip() != right.strip()
    if op == "contains":
        return right in left
    if op in ("begins with", "starts with"):
        return left.startswith(right)
    if op == "ends with":
        return left.endswith(right)
    if op in ("wildcard", "wildcard matches"):
        return fnmatchcase(left.strip(), right.strip())
    ordering = {
        "greater than": lambda a, b: a > b,
        "greater or equal": lambda a, b: a >= b,
        "less than": lambda a, b: a < b,
        "less or equal": lambda a, b: a <= b,
    }
    if op in ordering:
        a, b = _number(value), _number(data)
        if a is not None and b is not None:
            return bool(ordering[op](a, b))
        return bool(ordering[op](left, right))
    return False


def _minute(text: str, *, end: bool) -> int:
    hours, _colon, minutes = text.strip().partition(":")
    if not hours:
        return 23 * 60 + 59 if end else 0
    if not minutes:  # "9-17" means up to 17:59
        return int(hours) * 60 + (59 if end else 0)
    return int(hours) * 60 + int(minutes)


def _time_now(data: str, minute: int) -> bool:
    start, _dash, stop = data.partition("-")
    try:
        return _minute(start, end=False) <= minute <= _minute(stop, end=True)
    except ValueError:
        return False


def _condition(cond: Condition, facts: Facts) -> bool:
    name = cond.field.strip().casefold()
    if name == "always":
        hit = cond.data.strip() == "1"
    elif name == "timenow":
        hit = _time_now(cond.data, facts.hour_minute)
    elif name == "daynow":
        hit = str(facts.weekday_sun1) in cond.data
    elif name == "rcpt":
        hit = cond.data.strip().casefold() in {r.casefold() for r in facts.recipients}
    elif name == "collector":
        data = cond.data.strip()
        hit = data.casefold() == facts.collector_name.casefold() or data == str(facts.collector_id)
    elif name == "size":
        hit = compare(str(facts.size), cond.op, cond.data)
    elif name == "validrecipients":
        hit = compare(str(facts.valid), cond.op, cond.data)
    elif name == "invalidrecipients":
        hit = compare(str(facts.invalid), cond.op, cond.data)
    elif name == "any":
        hit = any(compare(value, cond.op, cond.data) for _n, value in facts.headers)
    else:
        names = {part.strip().casefold() for part in cond.field.split(",") if part.strip()}
        hit = any(
            compare(value, cond.op, cond.data)
            for header, value in facts.headers
            if header.casefold() in names
        )
    return hit != cond.negate


def _matches(rule: Rule, facts: Facts) -> bool:
    if not rule.conditions:
        return True
    results = (_condition(cond, facts) for cond in rule.conditions)
    return all(results) if rule.match_all else any(results)


def evaluate(rules: list[Rule], facts: Facts) -> Verdict:
    """Run the list top to bottom (seed-3 §4.1, §4.3)."""
    verdict = Verdict()
    skipping: list[bool] = []  # If/Else stack: True = this block is skipped
    taken: list[bool] = []  # whether the If branch ran
    for rule in rules:
        action = rule.action
        if action == "if":
            outer_skip = bool(skipping) and skipping[-1]
            hit = not outer_skip and _matches(rule, facts)
            skipping.append(outer_skip or not hit)
            taken.append(hit)
            continue
        if action == "else":
            if skipping:
                outer_skip = len(skipping) > 1 and skipping[-2]
                skipping[-1] = outer_skip or taken[-1]
            continue
        if action == "endif":
            if skipping:
                skipping.pop()
                taken.pop()
            continue
        if skipping and skipping[-1]:
            continue
        if not _matches(rule, facts):
            continue
        if action == "set-header-continue":
            verdict.header_lines.append(rule.header_line)
            continue
        if action == "set-header-stop":
            verdict.header_lines.append(rule.header_line)
            verdict.rule = rule.name
            return verdict
        if action == "stop":
            verdict.rule = rule.name
            return verdict
        verdict.action = action
        verdict.rule = rule.name
        verdict.targets = rule.targets
        return verdict
    return verdict
