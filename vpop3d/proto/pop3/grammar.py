"""POP3 wire grammar: command lines to typed commands, message bodies to octets.

This is the only module of the package that decodes client bytes. Everything it
raises is :class:`POP3SyntaxError`, whose ``text`` is safe to show after ``-ERR``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# RFC 2449 §4: a command line is at most 255 octets including the CRLF.
MAX_COMMAND_LINE = 255
# RFC 5034 §4 lets SASL client responses exceed the command limit; keep a sane cap.
MAX_AUTH_RESPONSE_LINE = 12288
# RFC 2449 §4: keywords are 3 or 4 characters, arguments up to 40 characters.
MAX_ARGUMENT = 40

_DIGEST = re.compile(r"[0-9a-fA-F]{32}")
_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}")  # RFC 4422 §3.1 sasl-mech


class POP3SyntaxError(Exception):
    """A command line the grammar refuses; ``text`` goes after ``-ERR``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# ----------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class User:
    """RFC 1939 §7 USER name."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """RFC 1939 §7 PASS string (spaces belong to the password)."""

    password: str


@dataclass(frozen=True, slots=True)
class Apop:
    """RFC 1939 §7 APOP name digest (digest is lower-case hex MD5)."""

    name: str
    digest: str


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 5034 AUTH mechanism [initial-response]; no mechanism lists them."""

    mechanism: str | None
    initial: str | None = None


@dataclass(frozen=True, slots=True)
class Capa:
    """RFC 2449 §5 CAPA."""


@dataclass(frozen=True, slots=True)
class Stat:
    """RFC 1939 §5 STAT."""


@dataclass(frozen=True, slots=True)
class List:
    """RFC 1939 §5 LIST [msg]."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Uidl:
    """RFC 1939 §7 UIDL [msg]."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RFC 1939 §5 RETR msg."""

    msg: int


@dataclass(frozen=True, slots=True)
class Top:
    """RFC 1939 §7 TOP msg n: the header, the blank line and ``lines`` body lines."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Dele:
    """RFC 1939 §5 DELE msg."""

    msg: int


@dataclass(frozen=True, slots=True)
class Rset:
    """RFC 1939 §5 RSET."""


@dataclass(frozen=True, slots=True)
class Noop:
    """RFC 1939 §5 NOOP."""


@dataclass(frozen=True, slots=True)
class Quit:
    """RFC 1939 §4/§6 QUIT."""


@dataclass(frozen=True, slots=True)
class Stls:
    """RFC 2595 §4 STLS."""


@dataclass(frozen=True, slots=True)
class Utf8:
    """RFC 6856 §2 UTF8."""


Command = (
    User
    | Pass
    | Apop
    | Auth
    | Capa
    | Stat
    | List
    | Uidl
    | Retr
    | Top
    | Dele
    | Rset
    | Noop
    | Quit
    | Stls
    | Utf8
)

_BARE: dict[str, Command] = {
    "CAPA": Capa(),
    "STAT": Stat(),
    "RSET": Rset(),
    "NOOP": Noop(),
    "QUIT": Quit(),
    "STLS": Stls(),
    "UTF8": Utf8(),
}


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise POP3SyntaxError("Invalid UTF-8 in command") from None


def _message_number(text: str) -> int:
    # RFC 1939 §3: message numbers are decimal, starting at 1.
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise POP3SyntaxError("Invalid message number")
    number = int(text)
    if number < 1:
        raise POP3SyntaxError("Invalid message number")
    return number


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise POP3SyntaxError("Invalid line count")
    return int(text)


def _args(rest: str) -> list[str]:
    args = rest.split(" ") if rest else []
    if any(not arg for arg in args):
        raise POP3SyntaxError("Invalid argument syntax")
    if any(len(arg) > MAX_ARGUMENT for arg in args):
        raise POP3SyntaxError("Argument too long")
    return args


def _arity(args: list[str], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        raise POP3SyntaxError("Wrong number of arguments")


def parse_command(line: bytes) -> Command:
    """Parse one command line (without CRLF) into a command.

    Keywords are case-insensitive (RFC 1939 §3); arguments are separated by one
    space. PASS keeps everything after ``PASS `` as the password (RFC 1939 §7).
    """
    if len(line) + 2 > MAX_COMMAND_LINE:
        raise POP3SyntaxError("Line too long")
    text = _decode(line)
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise POP3SyntaxError("Invalid characters in command")
    keyword, _, rest = text.partition(" ")
    verb = keyword.upper()
    if not verb:
        raise POP3SyntaxError("Empty command")
    if verb in _BARE:
        if rest:
            raise POP3SyntaxError("Wrong number of arguments")
        return _BARE[verb]
    if verb == "PASS":
        if not rest:
            raise POP3SyntaxError("Missing password")
        return Pass(rest)
    if verb == "AUTH":
        return _parse_auth(rest)
    args = _args(rest)
    if verb == "USER":
        _arity(args, 1, 1)
        return User(args[0])
    if verb == "APOP":
        _arity(args, 2, 2)
        if not _DIGEST.fullmatch(args[1]):
            raise POP3SyntaxError("Invalid APOP digest")
        return Apop(args[0], args[1].lower())
    if verb in ("LIST", "UIDL"):
        _arity(args, 0, 1)
        number = _message_number(args[0]) if args else None
        return List(number) if verb == "LIST" else Uidl(number)
    if verb in ("RETR", "DELE"):
        _arity(args, 1, 1)
        number = _message_number(args[0])
        return Retr(number) if verb == "RETR" else Dele(number)
    if verb == "TOP":
        _arity(args, 2, 2)
        return Top(_message_number(args[0]), _count(args[1]))
    raise POP3SyntaxError("Unknown command")


def _parse_auth(rest: str) -> Auth:
    # RFC 5034 §4: AUTH mechanism [initial-response]; the initial response is
    # base64 or "=" for an empty one. A bare AUTH lists mechanisms (RFC 1734 era).
    if not rest:
        return Auth(None)
    parts = rest.split(" ")
    if len(parts) > 2 or any(not part for part in parts):
        raise POP3SyntaxError("Invalid AUTH syntax")
    mechanism = parts[0].upper()
    if not _MECHANISM.fullmatch(mechanism):
        raise POP3SyntaxError("Invalid mechanism name")
    return Auth(mechanism, parts[1] if len(parts) == 2 else None)


def redact(line: bytes) -> bytes:
    """The line as a session log may show it: PASS, APOP and AUTH data hidden."""
    keyword = line.split(b" ", 1)[0].upper()
    if keyword in (b"PASS", b"APOP"):
        return keyword + b" ***"
    if keyword == b"AUTH":
        parts = line.split(b" ")
        return b" ".join(parts[:2] + ([b"***"] if len(parts) > 2 else []))
    return line


# ----------------------------------------------------------------- responses

CRLF = b"\r\n"
TERMINATOR = b".\r\n"


def encode_lines(status: str, lines: Sequence[str] | None) -> bytes:
    """A status line, and for multi-line replies the dot-stuffed data and ``.``."""
    out = [status.encode("utf-8"), CRLF]
    if lines is not None:
        for line in lines:
            data = line.encode("utf-8")
            if data.startswith(b"."):
                out.append(b".")  # RFC 1939 §3 byte-stuffing
            out.append(data)
            out.append(CRLF)
        out.append(TERMINATOR)
    return b"".join(out)


class BodyEncoder:
    """Turns a stored message, fed in chunks, into multi-line response octets.

    Line ends become CRLF (stored bare LF too), lines starting with ``.`` get one
    more (RFC 1939 §3), and the data ends with ``CRLF.CRLF``. For TOP
    (``body_lines`` set) the output stops after the header, the blank line and
    that many body lines (RFC 1939 §7). With ``strip_trailing_blank_lines`` the
    empty lines at the end of the message are dropped (manual L6322: the fix for
    Microsoft Internet Mail build 1160). Memory stays bounded by the chunk size.
    """

    def __init__(
        self, body_lines: int | None = None, *, strip_trailing_blank_lines: bool = False
    ) -> None:
        self._body_lines = body_lines
        self._strip = strip_trailing_blank_lines
        self._at_line_start = True
        self._pending_cr = False
        self._held_blank_lines = 0
        self._in_header = True
        self._line_has_content = False
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        """Encode the next chunk; returns what can be sent now."""
        if self.done or not chunk:
            return b""
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            # The CR may start a CRLF split across chunks.
            chunk = chunk[:-1]
            self._pending_cr = True
            if not chunk:
                return b""
        if self._body_lines is not None:
            return self._feed_lines(chunk)
        return self._feed_fast(chunk)

    def finish(self) -> bytes:
        """Everything still held back, then the terminating ``.`` line."""
        if self.done:
            return b""
        out = b""
        if self._pending_cr:
            self._pending_cr = False
            out = self.feed(b"\n")
        self.done = True
        if not self._at_line_start:
            out += CRLF
        return out + TERMINATOR

    def _feed_fast(self, chunk: bytes) -> bytes:
        # RETR path: whole-chunk byte operations, no per-line Python loop.
        data = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        stuffed = data.replace(b"\n.", b"\n..")
        if self._at_line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        if not self._strip:
            self._at_line_start = stuffed.endswith(b"\n")
            return stuffed
        return self._hold_blank_lines(stuffed)

    def _hold_blank_lines(self, data: bytes) -> bytes:
        end = len(data)
        while data.endswith(CRLF, 0, end):
            end -= 2  # only whole CRLFs: a lone CR is content
        content = data[:end]
        trailing = (len(data) - end) // 2
        if not content:
            if self._at_line_start:
                self._held_blank_lines += trailing
                return b""
            # The first CRLF ends the current line; the rest are blank lines.
            self._at_line_start = True
            self._held_blank_lines += trailing - 1
            return CRLF
        out = CRLF * self._held_blank_lines + content
        self._held_blank_lines = 0
        if trailing:
            out += CRLF
            self._held_blank_lines = trailing - 1
            self._at_line_start = True
        else:
            self._at_line_start = False
        return out

    def _feed_lines(self, chunk: bytes) -> bytes:
        # TOP path: count lines so the output can stop after the header + n lines.
        out: list[bytes] = []
        position = 0
        while position < len(chunk) and not self.done:
            newline = chunk.find(b"\n", position)
            end = len(chunk) if newline == -1 else newline
            segment = chunk[position:end]
            position = end + 1
            if newline != -1 and segment.endswith(b"\r"):
                segment = segment[:-1]
            if not self._in_header and self._body_lines == 0:
                self.done = True
                break
            if segment:
                if self._at_line_start and segment.startswith(b"."):
                    out.append(b".")
                out.append(segment)
                self._line_has_content = True
                self._at_line_start = False
            if newline == -1:
                break
            out.append(CRLF)
            self._at_line_start = True
            if self._in_header:
                self._in_header = self._line_has_content
            elif self._body_lines is not None:
                self._body_lines -= 1
            self._line_has_content = False
        if self.done:
            out.append(TERMINATOR)
        return b"".join(out)
