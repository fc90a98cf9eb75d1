"""IMAP SEARCH keys as values, their evaluation, and SORT keys (RFC 3501 §6.4.4, RFC 9051
§6.4.4, RFC 7162 §3.1.5 MODSEQ, RFC 5032 WITHIN, RFC 5256 SORT, RFC 5957 DISPLAY sort).

The IMAP grammar builds the key tree from these dataclasses; a command's list of keys
is ``And((k1, k2, ...))``. Strings are the decoded search strings (the grammar applies
CHARSET); dates are ``datetime.date``; ``$`` must be resolved to a ``SeqSet`` by the
caller. :func:`matches` touches ``candidate.raw()`` only for header, body and text keys,
and then at most once per call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from vpop3d.core.imapstring import ascii_casemap
from vpop3d.core.mime import (
    MessageSummary,
    entity_search_text,
    field_values,
    header_search_text,
    normalise_for_search,
    parse,
)
from vpop3d.core.mimeheader import HeaderField, scan_header
from vpop3d.core.seqset import SeqSet

# --- keys without arguments


@dataclass(frozen=True, slots=True)
class All:
    """ALL: every message."""


@dataclass(frozen=True, slots=True)
class Answered:
    """ANSWERED: \\Answered set."""


@dataclass(frozen=True, slots=True)
class Deleted:
    """DELETED: \\Deleted set."""


@dataclass(frozen=True, slots=True)
class Draft:
    """DRAFT: \\Draft set."""


@dataclass(frozen=True, slots=True)
class Flagged:
    """FLAGGED: \\Flagged set."""


@dataclass(frozen=True, slots=True)
class New:
    """NEW: recent and not seen (RFC 3501 only; RFC 9051 dropped it)."""


@dataclass(frozen=True, slots=True)
class Old:
    """OLD: not recent (RFC 3501 only)."""


@dataclass(frozen=True, slots=True)
class Recent:
    """RECENT: \\Recent set (RFC 3501 only)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """SEEN: \\Seen set."""


@dataclass(frozen=True, slots=True)
class Unanswered:
    """UNANSWERED."""


@dataclass(frozen=True, slots=True)
class Undeleted:
    """UNDELETED."""


@dataclass(frozen=True, slots=True)
class Undraft:
    """UNDRAFT."""


@dataclass(frozen=True, slots=True)
class Unflagged:
    """UNFLAGGED."""


@dataclass(frozen=True, slots=True)
class Unseen:
    """UNSEEN."""


# --- keys with a string (substring match, case-insensitive)


@dataclass(frozen=True, slots=True)
class Bcc:
    """BCC string: substring of a decoded Bcc field."""

    value: str


@dataclass(frozen=True, slots=True)
class Cc:
    """CC string."""

    value: str


@dataclass(frozen=True, slots=True)
class From:
    """FROM string."""

    value: str


@dataclass(frozen=True, slots=True)
class To:
    """TO string."""

    value: str


@dataclass(frozen=True, slots=True)
class Subject:
    """SUBJECT string."""

    value: str


@dataclass(frozen=True, slots=True)
class Header:
    """HEADER field-name string; an empty string matches every message with the field."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Body:
    """BODY string: decoded text parts only."""

    value: str


@dataclass(frozen=True, slots=True)
class Text:
    """TEXT string: header or body."""

    value: str


@dataclass(frozen=True, slots=True)
class Keyword:
    """KEYWORD flag (flags compare case-insensitively)."""

    flag: str


@dataclass(frozen=True, slots=True)
class Unkeyword:
    """UNKEYWORD flag."""

    flag: str


# --- dates, sizes, numbers


@dataclass(frozen=True, slots=True)
class Before:
    """BEFORE date: internal date (its own zone, time ignored) earlier than ``day``."""

    day: date


@dataclass(frozen=True, slots=True)
class On:
    """ON date."""

    day: date


@dataclass(frozen=True, slots=True)
class Since:
    """SINCE date: on or after."""

    day: date


@dataclass(frozen=True, slots=True)
class SentBefore:
    """SENTBEFORE date: Date header (internal date if missing or unparsable)."""

    day: date


@dataclass(frozen=True, slots=True)
class SentOn:
    """SENTON date."""

    day: date


@dataclass(frozen=True, slots=True)
class SentSince:
    """SENTSINCE date."""

    day: date


@dataclass(frozen=True, slots=True)
class Larger:
    """LARGER n: RFC 822 size strictly greater than n."""

    size: int


@dataclass(frozen=True, slots=True)
class Smaller:
    """SMALLER n: size strictly less than n."""

    size: int


@dataclass(frozen=True, slots=True)
class Older:
    """OLDER n (RFC 5032): internal date more than n seconds before now."""

    seconds: int


@dataclass(frozen=True, slots=True)
class Younger:
    """YOUNGER n (RFC 5032): internal date within the last n seconds."""

    seconds: int


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ n (RFC 7162 §3.1.5): mod-sequence at least n; entry name/type ignored."""

    modseq: int


@dataclass(frozen=True, slots=True)
class UID:
    """UID sequence-set (``*`` is the highest UID in the mailbox)."""

    uids: SeqSet


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A bare sequence-set key (``*`` is the number of messages)."""

    seqs: SeqSet


# --- combinators


@dataclass(frozen=True, slots=True)
class Not:
    """NOT key."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    """OR key1 key2."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class And:
    """A parenthesised list, or the top-level key list: all must match."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    All
    | Answered
    | Deleted
    | Draft
    | Flagged
    | New
    | Old
    | Recent
    | Seen
    | Unanswered
    | Undeleted
    | Undraft
    | Unflagged
    | Unseen
    | Bcc
    | Cc
    | From
    | To
    | Subject
    | Header
    | Body
    | Text
    | Keyword
    | Unkeyword
    | Before
    | On
    | Since
    | SentBefore
    | SentOn
    | SentSince
    | Larger
    | Smaller
    | Older
    | Younger
    | ModSeq
    | UID
    | SequenceSet
    | Not
    | Or
    | And
)

# system-flag keys: (flag, wanted state)
_FLAG_KEYS: dict[type[SearchKey], tuple[str, bool]] = {
    Answered: ("\\answered", True),
    Deleted: ("\\deleted", True),
    Draft: ("\\draft", True),
    Flagged: ("\\flagged", True),
    Seen: ("\\seen", True),
    Unanswered: ("\\answered", False),
    Undeleted: ("\\deleted", False),
    Undraft: ("\\draft", False),
    Unflagged: ("\\flagged", False),
    Unseen: ("\\seen", False),
}

_ADDRESS_KEYS: dict[type[SearchKey], str] = {
    Bcc: "bcc",
    Cc: "cc",
    From: "from",
    To: "to",
    Subject: "subject",
}


# --- keyword tables for the SEARCH grammar (vpop3d/proto/imap/grammar.py)

# keys without arguments, by upper-case keyword
NO_ARGUMENT_KEYS: dict[str, SearchKey] = {
    "ALL": All(),
    "ANSWERED": Answered(),
    "DELETED": Deleted(),
    "DRAFT": Draft(),
    "FLAGGED": Flagged(),
    "NEW": New(),
    "OLD": Old(),
    "RECENT": Recent(),
    "SEEN": Seen(),
    "UNANSWERED": Unanswered(),
    "UNDELETED": Undeleted(),
    "UNDRAFT": Undraft(),
    "UNFLAGGED": Unflagged(),
    "UNSEEN": Unseen(),
}

# keys taking one astring (KEYWORD/UNKEYWORD take a flag atom)
STRING_KEYS: dict[str, Callable[[str], SearchKey]] = {
    "BCC": Bcc,
    "BODY": Body,
    "CC": Cc,
    "FROM": From,
    "SUBJECT": Subject,
    "TEXT": Text,
    "TO": To,
    "KEYWORD": Keyword,
    "UNKEYWORD": Unkeyword,
}

# keys taking a date (RFC 3501 §9 ``date``)
DATE_KEYS: dict[str, Callable[[date], SearchKey]] = {
    "BEFORE": Before,
    "ON": On,
    "SINCE": Since,
    "SENTBEFORE": SentBefore,
    "SENTON": SentOn,
    "SENTSINCE": SentSince,
}

# keys taking a number
NUMBER_KEYS: dict[str, Callable[[int], SearchKey]] = {
    "LARGER": Larger,
    "SMALLER": Smaller,
    "OLDER": Older,
    "YOUNGER": Younger,
    "MODSEQ": ModSeq,
}


class SearchCandidate(Protocol):
    """What SEARCH needs of one message; ``raw`` is expensive and called lazily."""

    @property
    def seq(self) -> int: ...

    @property
    def uid(self) -> int: ...

    @property
    def flags(self) -> frozenset[str]: ...

    @property
    def internal_date(self) -> datetime: ...

    @property
    def size(self) -> int: ...

    @property
    def modseq(self) -> int: ...

    @property
    def recent(self) -> bool: ...

    @property
    def summary(self) -> MessageSummary: ...

    def raw(self) -> bytes: ...


def needs_raw(key: SearchKey) -> bool:
    """True when evaluating ``key`` may need the message bytes (header/body/text keys)."""
    if isinstance(key, Bcc | Cc | From | To | Subject | Header | Body | Text):
        return True
    if isinstance(key, Not):
        return needs_raw(key.key)
    if isinstance(key, Or):
        return needs_raw(key.left) or needs_raw(key.right)
    if isinstance(key, And):
        return any(needs_raw(item) for item in key.keys)
    return False


class _Message:
    """Per-candidate lazy views of the message: ``raw()`` is called at most once, the
    body is MIME-parsed only for BODY/TEXT, header keys only scan the header."""

    def __init__(self, candidate: SearchCandidate) -> None:
        self._candidate = candidate
        self._raw: bytes | None = None
        self._fields: list[HeaderField] | None = None
        self._body: str | None = None
        self._header: str | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = self._candidate.raw()
        return self._raw

    @property
    def fields(self) -> list[HeaderField]:
        if self._fields is None:
            self._fields = scan_header(self.raw)[0]
        return self._fields

    @property
    def body_text(self) -> str:
        if self._body is None:
            self._body = entity_search_text(parse(self.raw))
        return self._body

    @property
    def header_text(self) -> str:
        if self._header is None:
            self._header = header_search_text(self.fields)
        return self._header

    def header_contains(self, name: str, needle: str) -> bool:
        values = field_values(self.fields, name)
        return any(needle in normalise_for_search(value) for value in values)


@dataclass(frozen=True, slots=True)
class _Context:
    candidate: SearchCandidate
    message: _Message
    max_seq: int
    max_uid: int
    now: datetime | None


def _sent_day(candidate: SearchCandidate) -> date:
    sent = candidate.summary.sent_date
    return (sent if sent is not None else candidate.internal_date).date()


def _has_flag(candidate: SearchCandidate, flag: str) -> bool:
    wanted = flag.lower()
    return any(item.lower() == wanted for item in candidate.flags)


def _eval(key: SearchKey, ctx: _Context) -> bool:
    candidate = ctx.candidate
    flag_rule = _FLAG_KEYS.get(type(key))
    if flag_rule is not None:
        return _has_flag(candidate, flag_rule[0]) == flag_rule[1]
    if isinstance(key, And):
        # cheap keys first: message bytes are fetched only if still needed
        ordered = sorted(key.keys, key=needs_raw)
        return all(_eval(item, ctx) for item in ordered)
    if isinstance(key, Or):
        first, second = sorted((key.left, key.right), key=needs_raw)
        return _eval(first, ctx) or _eval(second, ctx)
    if isinstance(key, Not):
        return not _eval(key.key, ctx)
    if isinstance(key, All):
        return True
    if isinstance(key, New):
        return candidate.recent and not _has_flag(candidate, "\\seen")
    if isinstance(key, Old):
        return not candidate.recent
    if isinstance(key, Recent):
        return candidate.recent
    if isinstance(key, Keyword):
        return _has_flag(candidate, key.flag)
    if isinstance(key, Unkeyword):
        return not _has_flag(candidate, key.flag)
    if isinstance(key, Before | On | Since):
        return _compare_day(key, candidate.internal_date.date())
    if isinstance(key, SentBefore | SentOn | SentSince):
        return _compare_day(key, _sent_day(candidate))
    if isinstance(key, Larger):
        return candidate.size > key.size
    if isinstance(key, Smaller):
        return candidate.size < key.size
    if isinstance(key, Older | Younger):
        now = ctx.now if ctx.now is not None else datetime.now(candidate.internal_date.tzinfo)
        age = now - candidate.internal_date
        limit = timedelta(seconds=key.seconds)
        # RFC 5032 §3: OLDER n is age >= n, YOUNGER n is age <= n
        return age >= limit if isinstance(key, Older) else age <= limit
    if isinstance(key, ModSeq):
        return candidate.modseq >= key.modseq
    if isinstance(key, UID):
        return key.uids.contains(candidate.uid, ctx.max_uid)
    if isinstance(key, SequenceSet):
        return key.seqs.contains(candidate.seq, ctx.max_seq)
    return _eval_text(key, ctx.message)


def _compare_day(key: SearchKey, day: date) -> bool:
    if isinstance(key, Before | SentBefore):
        return day < key.day
    if isinstance(key, On | SentOn):
        return day == key.day
    if isinstance(key, Since | SentSince):
        return day >= key.day
    return False


def _eval_text(key: SearchKey, message: _Message) -> bool:
    field = _ADDRESS_KEYS.get(type(key))
    if field is not None and isinstance(key, Bcc | Cc | From | To | Subject):
        return message.header_contains(field, normalise_for_search(key.value))
    if isinstance(key, Header):
        return message.header_contains(key.name, normalise_for_search(key.value))
    if isinstance(key, Body):
        return normalise_for_search(key.value) in message.body_text
    if isinstance(key, Text):
        needle = normalise_for_search(key.value)
        return needle in message.header_text or needle in message.body_text
    return False


_FLAG_ONLY = (All, New, Old, Recent, Keyword, Unkeyword)


def reads_flags_only(key: SearchKey) -> bool:
    """True when ``key`` looks at nothing but flags and \\Recent.

    Such a key gives the same answer for every message with the same flags, which lets a
    caller decide it once per distinct flag set.
    """
    if type(key) in _FLAG_KEYS or isinstance(key, _FLAG_ONLY):
        return True
    if isinstance(key, Not):
        return reads_flags_only(key.key)
    if isinstance(key, Or):
        return reads_flags_only(key.left) and reads_flags_only(key.right)
    if isinstance(key, And):
        return all(reads_flags_only(item) for item in key.keys)
    return False


def matches(
    key: SearchKey,
    candidate: SearchCandidate,
    *,
    max_seq: int,
    max_uid: int,
    now: datetime | None = None,
) -> bool:
    """Does ``candidate`` satisfy ``key``?

    ``max_seq``/``max_uid`` give ``*`` its value; ``now`` (aware) is for OLDER/YOUNGER.
    """
    context = _Context(candidate, _Message(candidate), max_seq, max_uid, now)
    return _eval(key, context)


# --- SORT (RFC 5256 §3, RFC 5957)

SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One sort criterion: ``key`` is one of :data:`SORT_KEYS`; REVERSE sets ``reverse``."""

    key: str
    reverse: bool = False


class SortCandidate(Protocol):
    """What SORT needs of one message (any SearchCandidate qualifies)."""

    @property
    def seq(self) -> int: ...

    @property
    def internal_date(self) -> datetime: ...

    @property
    def size(self) -> int: ...

    @property
    def summary(self) -> MessageSummary: ...


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class SortField:
    """One comparable position of a sort key; numbers and strings share one shape."""

    value: tuple[float, str]
    reverse: bool = False

    def __lt__(self, other: SortField) -> bool:
        if self.reverse:
            return other.value < self.value
        return self.value < other.value


SortKey = tuple[SortField, ...]


def _criterion_value(key: str, candidate: SortCandidate) -> tuple[float, str]:
    summary = candidate.summary
    if key == "ARRIVAL":
        return (candidate.internal_date.timestamp(), "")
    if key == "DATE":
        # RFC 5256 §2.2: no usable Date header means the internal date is the sent date
        sent = summary.sent_date or candidate.internal_date
        return (sent.timestamp(), "")
    if key == "SIZE":
        return (float(candidate.size), "")
    if key == "SUBJECT":
        return (0.0, ascii_casemap(summary.subject_base))
    if key == "FROM":
        return (0.0, summary.from_sort)
    if key == "TO":
        return (0.0, summary.to_sort)
    if key == "CC":
        return (0.0, summary.cc_sort)
    if key == "DISPLAYFROM":
        return (0.0, summary.display_from.casefold())
    if key == "DISPLAYTO":
        return (0.0, summary.display_to.casefold())
    raise ValueError(f"unknown sort key {key!r}")


def sort_key(criteria: Sequence[SortCriterion], candidate: SortCandidate) -> SortKey:
    """A key for ``sorted``; ties fall back to ascending sequence number (RFC 5256 §3)."""
    fields = [
        SortField(_criterion_value(item.key.upper(), candidate), item.reverse) for item in criteria
    ]
    fields.append(SortField((float(candidate.seq), "")))
    return tuple(fields)
