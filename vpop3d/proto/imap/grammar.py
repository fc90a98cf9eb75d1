"""IMAP4rev1 command grammar (RFC 3501 §9): bytes in, frozen command values out.

The adapter hands over one complete command: the command line with every literal
inlined as ``{n}`` CRLF followed by its ``n`` octets, exactly as on the wire. This
is the only module that decodes client bytes into text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

from vpop3d.core import imapsearch as q
from vpop3d.core import utf7
from vpop3d.core.seqset import SeqSet

# RFC 3501 §9: ATOM-CHAR is any CHAR except atom-specials.
_ATOM_SPECIALS = (
    frozenset(b'(){ %*"\\]') | frozenset(range(0x00, 0x20)) | frozenset(range(0x7F, 0x100))
)
_ASTRING_SPECIALS = _ATOM_SPECIALS - {ord("]")}
_TAG_SPECIALS = _ATOM_SPECIALS | {ord("+")}
_LIST_WILDCARDS = frozenset(b"%*")
_LITERAL_AT_END = re.compile(rb"(~?)\{(\d{1,20})([+-]?)\}\Z")

MAX_SEARCH_DEPTH = 32  # nesting of OR/NOT/() in one SEARCH; refuse deeper ones
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


class ParseError(Exception):
    """The command is syntactically wrong: answered with tagged (or untagged) BAD."""

    def __init__(self, text: str, tag: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.tag = tag


# ----------------------------------------------------------------- literal framing


@dataclass(frozen=True, slots=True)
class LiteralSpec:
    """A literal announced at the end of a line: ``{n}``, ``{n+}`` or ``{n-}``."""

    size: int
    synchronizing: bool  # False for LITERAL+/LITERAL- ``{n+}`` (RFC 7888)
    binary: bool = False  # ``~{n}`` literal8 (RFC 3516)


def literal_at_end(line: bytes) -> LiteralSpec | None:
    """The literal a command line announces at its end, if any."""
    match = _LITERAL_AT_END.search(line)
    if match is None:
        return None
    return LiteralSpec(
        size=int(match.group(2)),
        synchronizing=match.group(3) == b"",
        binary=match.group(1) == b"~",
    )


def tag_of(line: bytes) -> str | None:
    """The tag of a command line, or None if it has no valid tag."""
    end = 0
    while end < len(line) and line[end] not in _TAG_SPECIALS:
        end += 1
    if end == 0 or (end < len(line) and line[end] != ord(" ")):
        return None
    return line[:end].decode("ascii")


# ----------------------------------------------------------------- sequence sets


# RFC 5182 ``$``: the saved SEARCH result. No parsed set is empty, so this one is unique.
SAVED_RESULT = SeqSet(())


def is_saved_result(messages: SeqSet) -> bool:
    """True for ``$`` (RFC 5182), which the session resolves from its saved result."""
    return not messages.items


def render_uid_set(values: Sequence[int]) -> str:
    """Compact ``1:3,7`` form of UIDs (COPYUID, APPENDUID)."""
    return SeqSet.from_numbers(values).format()


# ----------------------------------------------------------------- FETCH items


@dataclass(frozen=True, slots=True)
class Section:
    """``BODY[part.text (fields)]<origin.count>``; ``text`` is '' for the whole part."""

    part: tuple[int, ...] = ()
    text: str = ""  # "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None
    peek: bool = False

    def spec(self) -> str:
        """The section-spec as echoed in the response (without ``<origin>`` count)."""
        items = [str(p) for p in self.part]
        if self.text:
            items.append(self.text)
        spec = ".".join(items)
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return spec


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One fetch-att: a simple name (``FLAGS``, ``RFC822.SIZE``...) or a section."""

    name: str
    section: Section | None = None  # for BODY[...] and BODY.PEEK[...]


FETCH_MACROS: dict[str, tuple[str, ...]] = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE_FETCH = frozenset(
    {
        "FLAGS",
        "UID",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "MODSEQ",
    }
)


# ----------------------------------------------------------------- SEARCH keys

_SEARCH_NOARG: dict[str, q.SearchKey] = {
    "ALL": q.All(),
    "ANSWERED": q.Answered(),
    "DELETED": q.Deleted(),
    "DRAFT": q.Draft(),
    "FLAGGED": q.Flagged(),
    "NEW": q.New(),
    "OLD": q.Old(),
    "RECENT": q.Recent(),
    "SEEN": q.Seen(),
    "UNANSWERED": q.Unanswered(),
    "UNDELETED": q.Undeleted(),
    "UNDRAFT": q.Undraft(),
    "UNFLAGGED": q.Unflagged(),
    "UNSEEN": q.Unseen(),
}
_SEARCH_STRING: dict[str, Callable[[str], q.SearchKey]] = {
    "BCC": q.Bcc,
    "BODY": q.Body,
    "CC": q.Cc,
    "FROM": q.From,
    "SUBJECT": q.Subject,
    "TEXT": q.Text,
    "TO": q.To,
}
_SEARCH_DATE: dict[str, Callable[[date], q.SearchKey]] = {
    "BEFORE": q.Before,
    "ON": q.On,
    "SINCE": q.Since,
    "SENTBEFORE": q.SentBefore,
    "SENTON": q.SentOn,
    "SENTSINCE": q.SentSince,
}
_SEARCH_NUMBER: dict[str, Callable[[int], q.SearchKey]] = {
    "LARGER": q.Larger,
    "SMALLER": q.Smaller,
}
_SEARCH_FLAG: dict[str, Callable[[str], q.SearchKey]] = {
    "KEYWORD": q.Keyword,
    "UNKEYWORD": q.Unkeyword,
}


# ----------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Capability:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True)
class StartTLS:
    pass


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str
    initial_response: bytes | None = None  # SASL-IR (RFC 4959), still base64


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Select:
    mailbox: str
    readonly: bool = False  # EXAMINE
    condstore: bool = False  # "(CONDSTORE)" select parameter (RFC 7162 §3.1.8)
    qresync: QResync | None = None  # "(QRESYNC (...))" select parameter (RFC 7162 §3.2.5)


@dataclass(frozen=True, slots=True)
class QResync:
    """What a client remembers of a mailbox (RFC 7162 §3.2.5); seq-match-data is ignored."""

    uidvalidity: int
    modseq: int
    known_uids: SeqSet | None = None


@dataclass(frozen=True, slots=True)
class Create:
    mailbox: str


@dataclass(frozen=True, slots=True)
class Delete:
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    mailbox: str
    subscribe: bool = True  # False for UNSUBSCRIBE


@dataclass(frozen=True, slots=True)
class List:
    reference: str
    pattern: str
    lsub: bool = False
    special_use: bool = False  # RFC 6154 selection option "(SPECIAL-USE)": only those
    status: tuple[str, ...] = ()  # RFC 5819 "RETURN (STATUS (...))"
    # RFC 5258 LIST-EXTENDED: more patterns, SUBSCRIBED selection/return, RECURSIVEMATCH
    more_patterns: tuple[str, ...] = ()
    subscribed: bool = False
    recursive: bool = False
    return_subscribed: bool = False

    @property
    def extended(self) -> bool:
        """True when RFC 5258 rules (beyond RFC 3501 LIST) decide the answer."""
        return bool(self.more_patterns or self.subscribed or self.return_subscribed)


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append:
    mailbox: str
    flags: tuple[str, ...]
    internal_date: datetime | None
    message: bytes


@dataclass(frozen=True, slots=True)
class Check:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    pass


@dataclass(frozen=True, slots=True)
class Unselect:
    pass


@dataclass(frozen=True, slots=True)
class Expunge:
    uids: SeqSet | None = None  # UID EXPUNGE (RFC 4315)


@dataclass(frozen=True, slots=True)
class Search:
    key: q.SearchKey
    charset: str | None = None
    uid: bool = False
    returns: tuple[str, ...] | None = None  # ESEARCH "RETURN (...)" (RFC 4731)


@dataclass(frozen=True, slots=True)
class Sort:
    """RFC 5256 SORT: the criteria, then a search like SEARCH's."""

    criteria: tuple[q.SortCriterion, ...]
    charset: str
    key: q.SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Thread:
    """RFC 5256 THREAD: ``algorithm`` is REFERENCES or ORDEREDSUBJECT."""

    algorithm: str
    charset: str
    key: q.SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Compress:
    """RFC 4978 COMPRESS mechanism."""

    mechanism: str


@dataclass(frozen=True, slots=True)
class GetQuota:
    """RFC 9208 GETQUOTA quota-root."""

    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    """RFC 9208 GETQUOTAROOT mailbox."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    """RFC 9208 SETQUOTA quota-root (resource limit ...)."""

    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class GetAcl:
    """RFC 4314 §3.3 GETACL mailbox."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class SetAcl:
    """RFC 4314 §3.1 SETACL mailbox identifier mod-rights."""

    mailbox: str
    identifier: str
    rights: str


@dataclass(frozen=True, slots=True)
class DeleteAcl:
    """RFC 4314 §3.2 DELETEACL mailbox identifier."""

    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class ListRights:
    """RFC 4314 §3.4 LISTRIGHTS mailbox identifier."""

    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class MyRights:
    """RFC 4314 §3.5 MYRIGHTS mailbox."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class Fetch:
    messages: SeqSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changed_since: int | None = None  # CHANGEDSINCE modifier (RFC 7162 §3.1.4.1)
    vanished: bool = False  # VANISHED modifier (RFC 7162 §3.2.6)


@dataclass(frozen=True, slots=True)
class Store:
    messages: SeqSet
    mode: str  # "", "+", "-"
    silent: bool
    flags: tuple[str, ...]
    uid: bool = False
    unchanged_since: int | None = None  # UNCHANGEDSINCE modifier (RFC 7162 §3.1.3)


@dataclass(frozen=True, slots=True)
class Copy:
    messages: SeqSet
    mailbox: str
    uid: bool = False
    move: bool = False  # MOVE (RFC 6851)


@dataclass(frozen=True, slots=True)
class Idle:
    pass


@dataclass(frozen=True, slots=True)
class Namespace:
    pass


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Id:
    params: tuple[tuple[str, str | None], ...] | None


Command = (
    Capability
    | Noop
    | Logout
    | StartTLS
    | Authenticate
    | Login
    | Select
    | Create
    | Delete
    | Rename
    | Subscribe
    | List
    | Status
    | Append
    | Check
    | Close
    | Unselect
    | Expunge
    | Search
    | Sort
    | Thread
    | Compress
    | GetQuota
    | GetQuotaRoot
    | SetQuota
    | GetAcl
    | SetAcl
    | DeleteAcl
    | ListRights
    | MyRights
    | Fetch
    | Store
    | Copy
    | Idle
    | Namespace
    | Enable
    | Id
)


_Parser = Callable[["_Scanner", bool], Command]


@dataclass(frozen=True, slots=True)
class Tagged:
    """A parsed command line."""

    tag: str
    command: Command
    verb: str = field(default="")


# ----------------------------------------------------------------- scanner


class _Scanner:
    """A cursor over one complete command (literals inlined)."""

    def __init__(self, data: bytes, tag: str | None = None, utf8: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.tag = tag
        self.utf8 = utf8  # RFC 6855 §3: mailbox names are UTF-8, not modified UTF-7

    def fail(self, text: str) -> ParseError:
        return ParseError(text, self.tag)

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def take(self, token: bytes) -> bool:
        """Consume ``token`` (case-insensitive) if it is next."""
        end = self.pos + len(token)
        if self.data[self.pos : end].upper() == token.upper():
            self.pos = end
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        if not self.take(token):
            raise self.fail(f"Expected {what or token.decode()}")

    def sp(self) -> None:
        if not self.take(b" "):
            raise self.fail("Expected a space")

    def end(self) -> None:
        if not self.at_end():
            raise self.fail("Unexpected characters at end of command")

    def _run(self, specials: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        while self.pos < len(data) and data[self.pos] not in specials:
            self.pos += 1
        return data[start : self.pos]

    def atom(self) -> str:
        raw = self._run(_ATOM_SPECIALS)
        if not raw:
            raise self.fail("Expected an atom")
        return _decode(raw, self)

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise self.fail("Unterminated quoted string")
            ch = data[self.pos]
            self.pos += 1
            if ch == 0x22:
                return bytes(out)
            if ch == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in b'"\\':
                    raise self.fail("Bad escape in quoted string")
                ch = data[self.pos]
                self.pos += 1
            elif ch in (0x0D, 0x0A, 0x00):
                raise self.fail("Bad character in quoted string")
            out.append(ch)

    def literal(self) -> bytes:
        self.take(b"~")
        self.expect(b"{")
        digits = self._run(frozenset(b"+-}"))
        if not digits.isdigit():
            raise self.fail("Bad literal size")
        self.take(b"+") or self.take(b"-")
        self.expect(b"}\r\n", "literal")
        size = int(digits)
        data = self.data[self.pos : self.pos + size]
        if len(data) != size:
            raise self.fail("Literal shorter than announced")
        self.pos += size
        return data

    def string_bytes(self) -> bytes:
        ch = self.peek()
        if ch == 0x22:
            return self.quoted()
        if ch in (0x7B, 0x7E):
            return self.literal()
        raise self.fail("Expected a string")

    def astring_bytes(self) -> bytes:
        ch = self.peek()
        if ch in (0x22, 0x7B, 0x7E):
            return self.string_bytes()
        raw = self._run(_ASTRING_SPECIALS)
        if not raw:
            raise self.fail("Expected an astring")
        return raw

    def astring(self) -> str:
        return _decode(self.astring_bytes(), self)

    def nstring_or_nil(self) -> str | None:
        if self.take(b"NIL"):
            return None
        return _decode(self.string_bytes(), self)

    def mailbox(self) -> str:
        try:
            name = self.astring()
            if not self.utf8:
                name = utf7.decode(name)
        except ValueError:
            raise self.fail("Mailbox name is not valid modified UTF-7") from None
        # RFC 3501 §5.1: INBOX is case-insensitive.
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        ch = self.peek()
        if ch in (0x22, 0x7B, 0x7E):
            raw = self.string_bytes()
        else:
            raw = self._run(_ASTRING_SPECIALS - _LIST_WILDCARDS)
        if not raw and ch not in (0x22, 0x7B, 0x7E):
            raise self.fail("Expected a mailbox pattern")
        try:
            text = _decode(raw, self)
            return text if self.utf8 else utf7.decode(text)
        except ValueError:
            raise self.fail("Mailbox pattern is not valid modified UTF-7") from None

    def number(self) -> int:
        raw = self._run(frozenset(range(256)) - frozenset(b"0123456789"))
        if not raw or len(raw) > 10:
            raise self.fail("Expected a number")
        value = int(raw)
        if value > 0xFFFFFFFF:
            raise self.fail("Number out of range")
        return value

    def mod_sequence(self) -> int:
        """RFC 7162 mod-sequence-valzer: 0 to 2^63-1."""
        raw = self._run(frozenset(range(256)) - frozenset(b"0123456789"))
        if not raw or len(raw) > 19 or int(raw) > 2**63 - 1:
            raise self.fail("Expected a mod-sequence value")
        return int(raw)

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise self.fail("Expected a non-zero number")
        return value

    def seq_number(self) -> int | None:
        if self.take(b"*"):
            return None
        return self.nz_number()

    def sequence_set(self, saved: bool = True) -> SeqSet:
        if saved and self.take(b"$"):  # RFC 5182: "$" (seq-last-command) stands alone
            if self.peek() not in (None, 0x20, 0x29):
                raise self.fail("Invalid sequence set")
            return SAVED_RESULT
        ranges: list[tuple[int | None, int | None]] = []
        while True:
            low = self.seq_number()
            high = self.seq_number() if self.take(b":") else low
            ranges.append((low, high))
            if not self.take(b","):
                break
        if self.peek() not in (None, 0x20, 0x29):
            raise self.fail("Invalid sequence set")
        return SeqSet(tuple(ranges))

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        flags: list[str] = []
        while not self.take(b")"):
            if flags:
                self.sp()
            flags.append(self.settable_flag())
        return tuple(flags)

    def settable_flag(self) -> str:
        """A flag a client may store or append with: never \\Recent (RFC 3501 §2.3.2)."""
        flag = self.flag()
        if flag == "\\Recent":
            raise self.fail("\\Recent is set by the server only")
        return flag

    def flag(self) -> str:
        if self.take(b"\\"):
            return "\\" + _canonical_flag(self.atom())
        return self.atom()

    def date(self) -> date:
        quoted = self.take(b'"')
        raw = self._run(frozenset(b' )"'))
        if quoted:
            self.expect(b'"')
        year, month, day = parse_date(_decode(raw, self), self)
        return date(year, month, day)

    def date_time(self) -> datetime:
        raw = self.quoted()
        value = parse_date_time(_decode(raw, self))
        if value is None:
            raise self.fail("Invalid date-time")
        return value


def _decode(raw: bytes, scanner: _Scanner) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise scanner.fail("Invalid UTF-8") from None


_SYSTEM_FLAGS = {
    f.upper(): f for f in ("Answered", "Flagged", "Deleted", "Seen", "Draft", "Recent")
}


def _canonical_flag(name: str) -> str:
    return _SYSTEM_FLAGS.get(name.upper(), name)


def parse_date(text: str, scanner: _Scanner | None = None) -> tuple[int, int, int]:
    """RFC 3501 date ``d-Mon-yyyy`` as (year, month, day)."""
    parts = text.split("-")
    try:
        if len(parts) != 3 or not 1 <= len(parts[0]) <= 2 or len(parts[2]) != 4:
            raise ValueError(text)
        month = [m.upper() for m in MONTHS].index(parts[1].upper()) + 1
        day, year = int(parts[0]), int(parts[2])
        datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        err = ParseError(f"Invalid date {text!r}")
        if scanner is not None:
            err.tag = scanner.tag
        raise err from None
    return year, month, day


def parse_date_time(text: str) -> datetime | None:
    """RFC 3501 date-time ``dd-Mon-yyyy hh:mm:ss +zzzz`` (day may be space-padded)."""
    match = re.fullmatch(
        r"([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)",
        text,
    )
    if match is None:
        return None
    try:
        month = [m.upper() for m in MONTHS].index(match.group(2).upper()) + 1
        offset = timedelta(hours=int(match.group(8)), minutes=int(match.group(9)))
        if match.group(7) == "-":
            offset = -offset
        return datetime(
            int(match.group(3)),
            month,
            int(match.group(1).strip()),
            int(match.group(4)),
            int(match.group(5)),
            int(match.group(6)),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return None


def format_date_time(value: datetime) -> str:
    """RFC 3501 INTERNALDATE form ``dd-Mon-yyyy hh:mm:ss +zzzz``."""
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{value.day:02d}-{MONTHS[value.month - 1]}-{value.year:04d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


# ----------------------------------------------------------------- command parsers


def parse_command(data: bytes, utf8: bool = False) -> Tagged:
    """Parse one complete command; raise :class:`ParseError` on bad syntax.

    ``utf8``: the session enabled UTF8=ACCEPT (RFC 6855), so names are plain UTF-8.
    """
    tag = tag_of(data)
    if tag is None:
        raise ParseError("Missing or invalid tag")
    s = _Scanner(data, tag, utf8)
    s.pos = len(tag) + 1
    verb = s.atom().upper()
    uid = False
    if verb == "UID":
        s.sp()
        verb = s.atom().upper()
        uid = True
        if verb not in _UID_COMMANDS:
            raise s.fail(f"UID {verb} is not a UID command")
    parser = _PARSERS.get(verb)
    if parser is None:
        raise s.fail(f"Unknown command {verb[:40]}")
    command = parser(s, uid)
    s.end()
    return Tagged(tag, command, ("UID " if uid else "") + verb)


def _no_args(command: Command) -> _Parser:
    def parse(s: _Scanner, uid: bool) -> Command:
        return command

    return parse


def _authenticate(s: _Scanner, uid: bool) -> Command:
    s.sp()
    mechanism = s.atom().upper()
    initial = None
    if s.take(b" "):
        initial = s._run(frozenset(b" "))
        if not initial:
            raise s.fail("Expected an initial response")
    return Authenticate(mechanism, initial)


def _login(s: _Scanner, uid: bool) -> Command:
    s.sp()
    user = s.astring()
    s.sp()
    return Login(user, s.astring())


def _select(readonly: bool) -> _Parser:
    def parse(s: _Scanner, uid: bool) -> Command:
        s.sp()
        name = s.mailbox()
        condstore = False
        qresync: QResync | None = None
        if s.take(b" ("):  # select-params: CONDSTORE and QRESYNC; others are refused
            first = True
            while not s.take(b")"):
                if not first:
                    s.sp()
                first = False
                param = s.atom().upper()
                if param == "CONDSTORE":
                    condstore = True
                elif param == "QRESYNC" and qresync is None:
                    s.sp()
                    qresync = _qresync_params(s)
                else:
                    raise s.fail("Unsupported SELECT parameters")
        return Select(name, readonly, condstore or qresync is not None, qresync)

    return parse


def _qresync_params(s: _Scanner) -> QResync:
    # RFC 7162 §3.2.5: "(" uidvalidity SP mod-sequence-value [SP known-uids]
    #                  [SP seq-match-data] ")"
    s.expect(b"(")
    uidvalidity = s.nz_number()
    s.sp()
    modseq = s.mod_sequence()
    if modseq == 0:
        raise s.fail("Expected a non-zero mod-sequence")
    known: SeqSet | None = None
    if s.take(b" "):
        if s.peek() != 0x28:
            known = s.sequence_set(saved=False)
            s.take(b" ")
        if s.take(b"("):  # seq-match-data: two sequence sets, ignored (full history kept)
            s.sequence_set()
            s.sp()
            s.sequence_set()
            s.expect(b")")
    s.expect(b")")
    return QResync(uidvalidity, modseq, known)


def _one_mailbox(kind: type[Create] | type[Delete]) -> _Parser:
    def parse(s: _Scanner, uid: bool) -> Command:
        s.sp()
        return kind(s.mailbox())

    return parse


def _rename(s: _Scanner, uid: bool) -> Command:
    s.sp()
    old = s.mailbox()
    s.sp()
    return Rename(old, s.mailbox())


def _subscribe(flag: bool) -> _Parser:
    def parse(s: _Scanner, uid: bool) -> Command:
        s.sp()
        return Subscribe(s.mailbox(), flag)

    return parse


def _list(lsub: bool) -> _Parser:
    def parse(s: _Scanner, uid: bool) -> Command:
        s.sp()
        options: list[str] = []
        if not lsub and s.take(b"("):  # RFC 5258 selection options
            while not s.take(b")"):
                if options:
                    s.sp()
                options.append(s.atom().upper())
                if options[-1] not in _LIST_SELECT:
                    raise s.fail(f"Unknown LIST selection option {options[-1][:40]}")
            if "RECURSIVEMATCH" in options and not set(options) - {"RECURSIVEMATCH", "REMOTE"}:
                raise s.fail("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3
            s.sp()
        reference = s.astring()
        s.sp()
        several = not lsub and s.peek() == 0x28  # RFC 5258 §3: patterns in parentheses
        patterns = _list_patterns(s) if several else [s.list_mailbox()]
        status: tuple[str, ...] = ()
        returns: list[str] = []
        if not lsub and s.take(b" RETURN ("):
            while not s.take(b")"):
                if returns:
                    s.sp()
                returns.append(s.atom().upper())
                if returns[-1] not in _LIST_RETURN:
                    raise s.fail(f"Unknown LIST return option {returns[-1][:40]}")
                if returns[-1] == "STATUS":
                    s.sp()
                    status = _status_items(s)
            # RETURN (SPECIAL-USE) and (CHILDREN) ask for attributes we always send.
        return List(
            reference,
            patterns[0],
            lsub,
            "SPECIAL-USE" in options,
            status,
            tuple(patterns[1:]),
            "SUBSCRIBED" in options,
            "RECURSIVEMATCH" in options,
            "SUBSCRIBED" in returns,
        )

    return parse


_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"})


def _list_patterns(s: _Scanner) -> list[str]:
    s.expect(b"(")
    patterns = [s.list_mailbox()]
    while not s.take(b")"):
        s.sp()
        patterns.append(s.list_mailbox())
    return patterns


STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "HIGHESTMODSEQ",
        "SIZE",
        "DELETED",
        "DELETED-STORAGE",
    }
)


def _status(s: _Scanner, uid: bool) -> Command:
    s.sp()
    name = s.mailbox()
    s.sp()
    return Status(name, _status_items(s))


def _status_items(s: _Scanner) -> tuple[str, ...]:
    s.expect(b"(")
    items: list[str] = []
    while not s.take(b")"):
        if items:
            s.sp()
        item = s.atom().upper()
        if item not in STATUS_ITEMS:
            raise s.fail(f"Unknown STATUS item {item[:40]}")
        items.append(item)
    if not items:
        raise s.fail("Empty STATUS item list")
    return tuple(items)


def _append(s: _Scanner, uid: bool) -> Command:
    s.sp()
    name = s.mailbox()
    s.sp()
    flags: tuple[str, ...] = ()
    when = None
    if s.peek() == 0x28:
        flags = s.flag_list()
        s.sp()
    if s.peek() == 0x22:
        when = s.date_time()
        s.sp()
    if s.utf8 and s.take(b"UTF8 ("):  # RFC 6855 §4: append-data = "UTF8" SP "(" literal8 ")"
        if s.peek() != 0x7E:
            raise s.fail("Expected a literal8")
        data = s.literal()
        s.expect(b")")
        return Append(name, flags, when, data)
    if s.peek() not in (0x7B, 0x7E):
        raise s.fail("Expected a message literal")
    return Append(name, flags, when, s.literal())


def _expunge(s: _Scanner, uid: bool) -> Command:
    if uid:
        s.sp()
        return Expunge(s.sequence_set())
    return Expunge()


def _fetch(s: _Scanner, uid: bool) -> Command:
    s.sp()
    messages = s.sequence_set()
    s.sp()
    items: list[FetchItem] = []
    if s.take(b"("):
        while not s.take(b")"):
            if items:
                s.sp()
            items.append(_fetch_att(s))
        if not items:
            raise s.fail("Empty FETCH item list")
    else:
        start = s.pos
        word = s._run(_ATOM_SPECIALS | {ord("[")}).upper().decode("ascii", "replace")
        if word in FETCH_MACROS:
            items = [FetchItem(n) for n in FETCH_MACROS[word]]
        else:
            s.pos = start
            items.append(_fetch_att(s))
    changed_since = None
    vanished = False
    if s.take(b" ("):  # fetch-modifiers: CHANGEDSINCE and VANISHED (RFC 7162)
        first = True
        while not s.take(b")"):
            if not first:
                s.sp()
            first = False
            if s.take(b"CHANGEDSINCE ") and changed_since is None:
                changed_since = s.mod_sequence()
            elif s.take(b"VANISHED") and not vanished:
                vanished = True
            else:
                raise s.fail("Unsupported FETCH modifier")
        if vanished and (not uid or changed_since is None):
            # RFC 7162 §3.2.6: only UID FETCH, and only with CHANGEDSINCE
            raise s.fail("VANISHED needs UID FETCH and CHANGEDSINCE")
    return Fetch(messages, tuple(items), uid, changed_since, vanished)


def _fetch_att(s: _Scanner) -> FetchItem:
    name = s._run(_ATOM_SPECIALS | {ord("["), ord("<")}).upper()
    text = name.decode("ascii", "replace")
    if text in ("BODY", "BODY.PEEK"):
        if s.peek() == ord("["):
            section = _section(s, peek=text.endswith(".PEEK"))
            if s.take(b"<"):
                origin = s.number()
                s.expect(b".")
                count = s.nz_number()
                s.expect(b">")
                section = Section(
                    section.part,
                    section.text,
                    section.fields,
                    (origin, count),
                    section.peek,
                )
            return FetchItem("BODY", section)
        if text != "BODY":
            raise s.fail(f"{text} needs a section")
    if text in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        return _binary_att(s, text)
    if text in _SIMPLE_FETCH:
        return FetchItem(text)
    raise s.fail(f"Unknown FETCH item {text[:40]}")


def _binary_att(s: _Scanner, name: str) -> FetchItem:
    # RFC 3516 §4.2 / RFC 9051 §9: "BINARY" [".PEEK"] section-binary [partial] and
    # "BINARY.SIZE" section-binary, where section-binary = "[" [section-part] "]".
    s.expect(b"[", f"{name}[")
    part: list[int] = []
    while not s.take(b"]"):
        if part:
            s.expect(b".", "a section part")
        part.append(s.nz_number())
    partial = None
    if name != "BINARY.SIZE" and s.take(b"<"):
        origin = s.number()
        s.expect(b".")
        count = s.nz_number()
        s.expect(b">")
        partial = (origin, count)
    # BINARY.SIZE never sets \Seen: it is built as a peek.
    section = Section(tuple(part), "", (), partial, name != "BINARY")
    return FetchItem("BINARY.SIZE" if name == "BINARY.SIZE" else "BINARY", section)


def _section(s: _Scanner, peek: bool) -> Section:
    s.expect(b"[")
    part: list[int] = []
    text = ""
    fields: tuple[str, ...] = ()
    while not s.take(b"]"):
        if part and not s.take(b"."):
            raise s.fail("Bad section")
        if s.peek() is not None and 0x30 <= (s.peek() or 0) <= 0x39:
            part.append(s.nz_number())
            continue
        word = s._run(frozenset(b"] ")).upper().decode("ascii", "replace")
        if word in ("HEADER", "TEXT") or (word == "MIME" and part):
            text = word
        elif word in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            text = word
            s.sp()
            s.expect(b"(")
            names: list[str] = []
            while not s.take(b")"):
                if names:
                    s.sp()
                names.append(s.astring().upper())
            if not names:
                raise s.fail("Empty header list")
            fields = tuple(names)
        else:
            raise s.fail("Bad section")
        s.expect(b"]")
        break
    return Section(tuple(part), text, fields, None, peek)


def _search(s: _Scanner, uid: bool) -> Command:
    s.sp()
    charset = None
    returns: tuple[str, ...] | None = None
    if s.take(b"RETURN ("):  # RFC 4731 §3.1: an empty list means ALL
        options: list[str] = []
        while not s.take(b")"):
            if options:
                s.sp()
            option = s.atom().upper()
            if option not in ("MIN", "MAX", "ALL", "COUNT", "SAVE"):  # SAVE: RFC 5182
                raise s.fail(f"Unknown SEARCH RETURN option {option[:20]}")
            options.append(option)
        returns = tuple(options) or ("ALL",)
        s.sp()
    if s.take(b"CHARSET "):
        charset = s.astring().upper()
        s.sp()
    return Search(_search_keys(s), charset, uid, returns)


def _search_keys(s: _Scanner) -> q.SearchKey:
    keys = [_search_key(s, 0)]
    while s.take(b" "):
        keys.append(_search_key(s, 0))
    return keys[0] if len(keys) == 1 else q.And(tuple(keys))


THREAD_ALGORITHMS = frozenset({"REFERENCES", "ORDEREDSUBJECT"})


def _compress(s: _Scanner, uid: bool) -> Command:
    s.sp()
    return Compress(s.atom().upper())


def _getquota(s: _Scanner, uid: bool) -> Command:
    s.sp()
    return GetQuota(s.astring())


def _getquotaroot(s: _Scanner, uid: bool) -> Command:
    s.sp()
    return GetQuotaRoot(s.mailbox())


def _setquota(s: _Scanner, uid: bool) -> Command:
    s.sp()
    root = s.astring()
    s.sp()
    s.expect(b"(")
    limits: list[tuple[str, int]] = []
    while not s.take(b")"):
        if limits:
            s.sp()
        name = s.atom().upper()
        s.sp()
        limits.append((name, s.mod_sequence()))  # RFC 9208: number64
    return SetQuota(root, tuple(limits))


def _getacl(s: _Scanner, uid: bool) -> Command:
    s.sp()
    return GetAcl(s.mailbox())


def _myrights(s: _Scanner, uid: bool) -> Command:
    s.sp()
    return MyRights(s.mailbox())


def _mailbox_identifier(s: _Scanner) -> tuple[str, str]:
    s.sp()
    mailbox = s.mailbox()
    s.sp()
    return mailbox, s.astring()  # RFC 4314 §3: identifier = astring


def _setacl(s: _Scanner, uid: bool) -> Command:
    mailbox, identifier = _mailbox_identifier(s)
    s.sp()
    return SetAcl(mailbox, identifier, s.astring())  # mod-rights = astring


def _deleteacl(s: _Scanner, uid: bool) -> Command:
    return DeleteAcl(*_mailbox_identifier(s))


def _listrights(s: _Scanner, uid: bool) -> Command:
    return ListRights(*_mailbox_identifier(s))


def _sort(s: _Scanner, uid: bool) -> Command:
    # RFC 5256 §3: SORT (criteria) charset search-key...
    s.sp()
    s.expect(b"(")
    criteria: list[q.SortCriterion] = []
    reverse = False
    while not s.take(b")"):
        if criteria or reverse:
            s.sp()
        word = s.atom().upper()
        if word == "REVERSE":
            if reverse:
                raise s.fail("REVERSE twice")
            reverse = True
            continue
        if word not in q.SORT_KEYS:
            raise s.fail(f"Unknown sort criterion {word[:40]}")
        criteria.append(q.SortCriterion(word, reverse))
        reverse = False
    if not criteria or reverse:
        raise s.fail("Bad sort criteria")
    s.sp()
    charset = s.astring().upper()
    s.sp()
    return Sort(tuple(criteria), charset, _search_keys(s), uid)


def _thread(s: _Scanner, uid: bool) -> Command:
    # RFC 5256 §3: THREAD algorithm charset search-key...
    s.sp()
    algorithm = s.atom().upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise s.fail(f"Unknown threading algorithm {algorithm[:40]}")
    s.sp()
    charset = s.astring().upper()
    s.sp()
    return Thread(algorithm, charset, _search_keys(s), uid)


def _search_key(s: _Scanner, depth: int) -> q.SearchKey:
    if depth > MAX_SEARCH_DEPTH:
        raise s.fail("SEARCH nested too deeply")
    if s.take(b"("):
        keys = [_search_key(s, depth + 1)]
        while not s.take(b")"):
            s.sp()
            keys.append(_search_key(s, depth + 1))
        return keys[0] if len(keys) == 1 else q.And(tuple(keys))
    ch = s.peek()
    if ch is not None and (0x30 <= ch <= 0x39 or ch in (0x2A, 0x24)):  # digit, "*", "$"
        return q.SequenceSet(s.sequence_set())
    name = s.atom().upper()
    if name in _SEARCH_NOARG:
        return _SEARCH_NOARG[name]
    if name == "NOT":
        s.sp()
        return q.Not(_search_key(s, depth + 1))
    if name == "OR":
        s.sp()
        left = _search_key(s, depth + 1)
        s.sp()
        return q.Or(left, _search_key(s, depth + 1))
    s.sp()
    if name in _SEARCH_STRING:
        return _SEARCH_STRING[name](s.astring())
    if name in _SEARCH_DATE:
        return _SEARCH_DATE[name](s.date())
    if name in _SEARCH_NUMBER:
        return _SEARCH_NUMBER[name](s.number())
    if name in ("OLDER", "YOUNGER"):  # RFC 5032 WITHIN: interval in seconds, nz-number
        seconds = s.nz_number()
        return q.Older(seconds) if name == "OLDER" else q.Younger(seconds)
    if name in _SEARCH_FLAG:
        return _SEARCH_FLAG[name](s.flag())
    if name == "HEADER":
        field_name = s.astring()
        s.sp()
        return q.Header(field_name, s.astring())
    if name == "UID":
        return q.UID(s.sequence_set())
    if name == "MODSEQ":  # RFC 7162 §3.1.5; the optional entry name/type is accepted
        if s.peek() == 0x22:
            s.string_bytes()
            s.sp()
            s.atom()
            s.sp()
        return q.ModSeq(s.mod_sequence())
    raise s.fail(f"Unknown SEARCH key {name[:40]}")


def _store(s: _Scanner, uid: bool) -> Command:
    s.sp()
    messages = s.sequence_set()
    s.sp()
    unchanged_since = None
    if s.take(b"("):  # store-modifiers: UNCHANGEDSINCE only
        if not s.take(b"UNCHANGEDSINCE "):
            raise s.fail("Unsupported STORE modifier")
        unchanged_since = s.mod_sequence()
        s.expect(b")")
        s.sp()
    mode = "+" if s.take(b"+") else "-" if s.take(b"-") else ""
    if not s.take(b"FLAGS"):
        raise s.fail("Expected FLAGS, +FLAGS or -FLAGS")
    silent = s.take(b".SILENT")
    s.sp()
    if s.peek() == 0x28:
        flags = s.flag_list()
    else:  # RFC 3501 §9 store-att-flags allows a bare flag list
        names = [s.settable_flag()]
        while s.take(b" "):
            names.append(s.settable_flag())
        flags = tuple(names)
    return Store(messages, mode, silent, flags, uid, unchanged_since)


def _copy(move: bool) -> _Parser:
    def parse(s: _Scanner, uid: bool) -> Command:
        s.sp()
        messages = s.sequence_set()
        s.sp()
        return Copy(messages, s.mailbox(), uid, move)

    return parse


def _enable(s: _Scanner, uid: bool) -> Command:
    names: list[str] = []
    while s.take(b" "):
        names.append(s.atom().upper())
    if not names:
        raise s.fail("ENABLE needs at least one capability")
    return Enable(tuple(names))


def _id(s: _Scanner, uid: bool) -> Command:
    s.sp()
    if s.take(b"NIL"):
        return Id(None)
    s.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while not s.take(b")"):
        if params:
            s.sp()
        key = _decode(s.string_bytes(), s)
        s.sp()
        params.append((key, s.nstring_or_nil()))
        if len(params) > 30:  # RFC 2971 §3.3: at most 30 pairs
            raise s.fail("Too many ID parameters")
    return Id(tuple(params))


_PARSERS: dict[str, _Parser] = {
    "CAPABILITY": _no_args(Capability()),
    "NOOP": _no_args(Noop()),
    "LOGOUT": _no_args(Logout()),
    "STARTTLS": _no_args(StartTLS()),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "SELECT": _select(readonly=False),
    "EXAMINE": _select(readonly=True),
    "CREATE": _one_mailbox(Create),
    "DELETE": _one_mailbox(Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _subscribe(flag=True),
    "UNSUBSCRIBE": _subscribe(flag=False),
    "LIST": _list(lsub=False),
    "LSUB": _list(lsub=True),
    "STATUS": _status,
    "APPEND": _append,
    "CHECK": _no_args(Check()),
    "CLOSE": _no_args(Close()),
    "UNSELECT": _no_args(Unselect()),
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "SORT": _sort,
    "COMPRESS": _compress,
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _getquotaroot,
    "SETQUOTA": _setquota,
    "GETACL": _getacl,
    "SETACL": _setacl,
    "DELETEACL": _deleteacl,
    "LISTRIGHTS": _listrights,
    "MYRIGHTS": _myrights,
    "THREAD": _thread,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy(move=False),
    "MOVE": _copy(move=True),
    "IDLE": _no_args(Idle()),
    "NAMESPACE": _no_args(Namespace()),
    "ENABLE": _enable,
    "ID": _id,
}
_UID_COMMANDS = frozenset({"FETCH", "STORE", "SEARCH", "SORT", "THREAD", "COPY", "MOVE", "EXPUNGE"})
