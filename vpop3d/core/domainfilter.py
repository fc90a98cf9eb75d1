"""The Domain Filtering language of a Mail Sender (seed-3 §16), parsed and evaluated.

A script is lines of ``attempt:`` or ``skip:`` rules, each with conditions that must
all hold (separated by spaces or ``and``); ``#`` starts a comment line. The first
matching rule decides. With no match: Skip when the script has any ``attempt:``
line, else Attempt; an empty script attempts everything. ``to`` conditions are
evaluated per recipient; a skipped recipient stays queued for other senders.

Examples::

    skip: size > 50kB
    attempt: to regexp /[abc]@company\\.(org|com)$/i
    attempt: authsender = "bob"
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from vpop3d.core.wildcard import has_wildcards, wildcard_match

__all__ = ["Facts", "FilterError", "FilterScript", "parse_script"]


class FilterError(ValueError):
    """A script line that cannot be parsed; the message names line and column."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a condition can look at for one message (and one recipient)."""

    size: int = 0
    retries: int = 0
    age_seconds: float = 0.0
    authsender: str = ""
    sender: str = ""
    recipient: str = ""


_NUM_OPS: dict[str, Callable[[float, float], bool]] = {
    "<>": operator.ne,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_SIZES = {"": 1, "b": 1, "kb": 1024, "mb": 1024 * 1024}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<re>/(?:[^/\\]|\\.)*/i?)
      | (?P<op><>|!=|<=|>=|==|=|<|>)
      | (?P<word>[A-Za-z0-9_.:*@+-]+)
    )""",
    re.VERBOSE,
)

Predicate = Callable[[Facts], bool]
_TEXT_FIELDS: dict[str, Callable[[Facts], str]] = {
    "authsender": lambda f: f.authsender,
    "from": lambda f: f.sender,
    "to": lambda f: f.recipient,
}


@dataclass(frozen=True, slots=True)
class _Rule:
    attempt: bool
    conditions: tuple[Predicate, ...]
    uses_to: bool


@dataclass(frozen=True, slots=True)
class FilterScript:
    rules: tuple[_Rule, ...]
    has_attempt: bool

    @property
    def uses_recipient(self) -> bool:
        return any(rule.uses_to for rule in self.rules)

    def attempt(self, facts: Facts) -> bool:
        """True: this sender tries the message (for ``facts.recipient``)."""
        for rule in self.rules:
            if all(condition(facts) for condition in rule.conditions):
                return rule.attempt
        return not self.has_attempt


def _tokens(text: str, number: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"line {number}, column {pos + 1}: unexpected {text[pos:]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _compile_regex(token: str, where: str) -> re.Pattern[str]:
    flags = re.IGNORECASE if token.endswith("i") else 0
    body = token[1 : token.rfind("/")]
    try:
        return re.compile(body, flags)
    except re.error as exc:
        raise FilterError(f"{where}: bad regular expression: {exc}") from None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], where: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.where = where

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str) -> str:
        token = self.peek()
        if token is None or token[0] != expected:
            found = "end of line" if token is None else repr(token[1])
            raise FilterError(f"{self.where}: expected {expected}, found {found}")
        self.pos += 1
        return token[1]

    def condition(self) -> tuple[Predicate, bool]:
        name = self.take("word").lower()
        if name == "all":
            return (lambda _f: True), False
        if name == "none":
            return (lambda _f: False), False
        if name in ("size", "retries", "age"):
            return self._numeric(name), False
        if name in _TEXT_FIELDS:
            return self._text(name), name == "to"
        raise FilterError(f"{self.where}: unknown field {name!r}")

    def _numeric(self, name: str) -> Predicate:
        op = _NUM_OPS[self.take("op")]
        word = self.take("word").lower()
        match = re.fullmatch(r"(\d+)([a-z]*)", word)
        if match is None:
            raise FilterError(f"{self.where}: {name} needs a number, found {word!r}")
        number, unit = int(match.group(1)), match.group(2)
        if name == "size":
            if unit not in _SIZES:
                raise FilterError(f"{self.where}: size unit {unit!r} (use kB or MB)")
            limit = float(number * _SIZES[unit])
            return lambda f: op(float(f.size), limit)
        if name == "retries":
            if unit:
                raise FilterError(f"{self.where}: retries takes a plain number")
            return lambda f: op(float(f.retries), float(number))
        if not unit:
            nxt = self.peek()
            unit = self.take("word").lower() if nxt and nxt[0] == "word" else ""
        seconds = _UNITS.get(unit.rstrip("s"))
        if seconds is None:
            raise FilterError(f"{self.where}: age unit {unit!r} (minutes, hours or days)")
        limit = float(number * seconds)
        return lambda f: op(f.age_seconds, limit)

    def _text(self, name: str) -> Predicate:
        get = _TEXT_FIELDS[name]
        token = self.peek()
        if token is None:
            raise FilterError(f"{self.where}: {name} needs an operator")
        negate = False
        if token[0] == "word" and token[1].lower() == "not":
            self.pos += 1
            negate = True
            token = self.peek()
        if token is None:
            raise FilterError(f"{self.where}: {name} needs an operator")
        self.pos += 1
        kind, value = token
        predicate: Predicate
        if kind == "op" and value in ("=", "==", "<>", "!="):
            if negate:
                raise FilterError(f"{self.where}: 'not' goes with contains/matches/regexp")
            wanted = _unquote(self.take("str")).lower()
            equal = value in ("=", "==")
            return lambda f: (get(f).lower() == wanted) == equal
        verb = value.lower() if kind == "word" else ""
        if verb == "contains":
            needle = _unquote(self.take("str")).lower()
            predicate = lambda f: needle in get(f).lower()  # noqa: E731
        elif verb == "matches":
            pattern = _unquote(self.take("str")).lower()
            if has_wildcards(pattern):
                predicate = lambda f: wildcard_match(pattern, get(f).lower())  # noqa: E731
            else:
                # seed-3 §16 proposal: a pattern without wildcards matches as a
                # substring, so the manual's own examples ("@example.com") work.
                predicate = lambda f: pattern in get(f).lower()  # noqa: E731
        elif verb == "regexp":
            regex = _compile_regex(self.take("re"), self.where)
            predicate = lambda f: regex.search(get(f)) is not None  # noqa: E731
        else:
            raise FilterError(f"{self.where}: unknown operator {value!r} for {name}")
        if negate:
            inner = predicate
            return lambda f: not inner(f)
        return predicate


def parse_script(text: str) -> FilterScript:
    """Parse a whole script; raises :class:`FilterError` for the first bad line."""
    rules: list[_Rule] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, colon, rest = line.partition(":")
        action = head.strip().lower()
        if not colon or action not in ("attempt", "skip"):
            raise FilterError(f"line {number}: a rule starts with 'attempt:' or 'skip:'")
        where = f"line {number}"
        parser = _Parser(_tokens(rest, number), where)
        conditions: list[Predicate] = []
        uses_to = False
        while parser.peek() is not None:
            token = parser.peek()
            if token is not None and token == ("word", token[1]) and token[1].lower() == "and":
                parser.pos += 1
                continue
            condition, is_to = parser.condition()
            conditions.append(condition)
            uses_to = uses_to or is_to
        if not conditions:
            raise FilterError(f"{where}: no condition after '{action}:'")
        rules.append(_Rule(action == "attempt", tuple(conditions), uses_to))
    return FilterScript(tuple(rules), any(rule.attempt for rule in rules))
