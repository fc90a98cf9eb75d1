"""Differential IMAP conformance: the same scripted sessions against Dovecot and vpop3d.

Both servers get a fresh user per case, seeded over APPEND with the same corpus
(tests/integration/imap_corpus.py: same flags, same INTERNALDATEs), so message
numbers, UIDs and the answers to every RFC 3501 command must agree. Responses are
compared after normalising only what the RFCs leave to the server (see
:func:`canonical`): response text after the status, CAPABILITY lists, UIDVALIDITY
and MODSEQ values, quoted vs literal strings, the order of unordered items. Every
case must agree (the faults it found are fixed and their cases guard the fixes);
where the RFCs let the two servers differ, the case says so in a comment and either
the comparison allows it or the step is left out.

A case is a list of steps (see :func:`transcript`): a command; ``(text, literal)``;
"2|..." on a second connection; "!..." / "?..." a malformed command compared by its
status only; "=..." raw bytes in one write (pipelining, LITERAL+); IDLE ... DONE;
"{modseq}"-style placeholders for the server's own numbers.

Dovecot (Debian's dovecot-imapd) runs from a throw-away config on a loopback port
(tests/support/dovecot.py); vpop3d is a real ``twistd`` child (tests/support/server.py).
"""

from __future__ import annotations

import contextlib
import difflib
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest

from tests.integration.imap_corpus import CORPUS
from tests.support.database import reset_database
from tests.support.dovecot import Dovecot, missing
from tests.support.server import ServerProcess, add_user, start_server

pytestmark = pytest.mark.network

PASSWORD = "secret"
# The folders vpop3d gives every new account (RFC 6154 special-use); Dovecot is told
# to create the same ones so LIST answers can be compared.
SPECIAL = (
    ("Archive", "\\Archive", "create"),
    ("Drafts", "\\Drafts", "create"),
    ("Junk", "\\Junk", "create"),
    ("Sent", "\\Sent", "create"),
    ("Trash", "\\Trash", "create"),
)
USERS = [f"conf{n}" for n in range(200)]

# ----------------------------------------------------------------- the wire client

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Wire:
    """A minimal IMAP client: send a command, collect every response line up to its
    tagged completion, literals included, as raw bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = b""
        self.counter = 0
        self.idling = b""
        self.greeting = self._unit()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(f"connection closed; pending {self.buffer!r}")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        end = self.buffer.index(b"\r\n") + 2
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _unit(self) -> bytes:
        """One response: a line plus any literals it announces."""
        unit = b""
        while True:
            line = self._line()
            unit += line
            match = _LITERAL.search(line)
            if match is None:
                return unit
            unit += self._exactly(int(match.group(1)))

    def command(self, *parts: str | bytes) -> list[bytes]:
        """Send one command (``str`` parts verbatim, ``bytes`` parts as synchronising
        literals) and return its responses, the tagged one last."""
        self.counter += 1
        tag = b"C%d" % self.counter
        pending = [tag, b" "]
        responses: list[bytes] = []
        for part in parts:
            if isinstance(part, str):
                pending.append(part.encode("utf-8"))
                continue
            pending.append(b"{%d}\r\n" % len(part))
            self.sock.sendall(b"".join(pending))
            pending = []
            while True:
                unit = self._unit()
                if unit.startswith(b"+"):
                    break
                responses.append(unit)
                if unit.startswith(tag + b" "):  # literal refused
                    return responses
            self.sock.sendall(part)
        pending.append(b"\r\n")
        self.sock.sendall(b"".join(pending))
        while True:
            unit = self._unit()
            responses.append(unit)
            if unit.startswith(tag + b" "):
                return responses

    def pipelined(self, data: str) -> list[bytes]:
        """Send ``data`` in one write, each "{tag}" a new tag, and read every response up
        to the completion of every tag, in whatever order they come (pipelining,
        non-synchronising literals)."""
        tags = []
        while "{tag}" in data:
            self.counter += 1
            tags.append(f"C{self.counter}")
            data = data.replace("{tag}", tags[-1], 1)
        self.sock.sendall(data.encode("utf-8"))
        responses: list[bytes] = []
        pending = {tag.encode() for tag in tags}
        while pending:
            unit = self._unit()
            responses.append(unit)
            pending.discard(unit.split(b" ", 1)[0])
        return responses

    def raw(self, line: bytes) -> list[bytes]:
        """Send a line as it is (malformed commands) and read up to a tagged reply or BYE."""
        self.sock.sendall(line)
        responses: list[bytes] = []
        while True:
            unit = self._unit()
            responses.append(unit)
            if not unit.startswith(b"* ") or unit.startswith(b"* BYE"):
                return responses

    def idle(self) -> list[bytes]:
        """Start IDLE (RFC 2177) and return what came before the continuation."""
        self.counter += 1
        self.idling = b"C%d" % self.counter
        self.sock.sendall(self.idling + b" IDLE\r\n")
        responses: list[bytes] = []
        while True:
            unit = self._unit()
            responses.append(unit)
            if unit.startswith((b"+", self.idling + b" ")):
                return responses

    def done(self) -> list[bytes]:
        """End IDLE: what the server reported while idling, then the tagged response.

        Every IDLE in the cases expects a change pushed by another session: wait (up to
        10 s) for it to arrive, and a little longer for the rest, before DONE."""
        deadline = time.monotonic() + 10
        self.sock.settimeout(0.1)
        try:
            while b"\r\n" not in self.buffer and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    self._fill()
            settle = time.monotonic() + 0.3
            while time.monotonic() < settle:
                with contextlib.suppress(TimeoutError):
                    self._fill()
        finally:
            self.sock.settimeout(20)
        self.sock.sendall(b"DONE\r\n")
        responses: list[bytes] = []
        while True:
            unit = self._unit()
            responses.append(unit)
            if unit.startswith(self.idling + b" "):
                return responses

    def close(self) -> None:
        self.sock.close()


# ----------------------------------------------------------------- the response parser


@dataclass(frozen=True)
class Quoted:
    """An IMAP string, whether it came quoted or as a literal (RFC 3501 §4.3)."""

    value: bytes


Token: TypeAlias = "str | Quoted | list[Token]"


class Parser:
    """Splits one response into atoms, strings and parenthesised lists."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while self.pos < len(self.data):
            char = self.data[self.pos : self.pos + 1]
            if char in (b" ", b"\r", b"\n"):
                self.pos += 1
            elif char == b")":
                self.pos += 1
                return out
            else:
                out.append(self.token())
        return out

    def token(self) -> Token:
        char = self.data[self.pos : self.pos + 1]
        if char == b"(":
            self.pos += 1
            return self.tokens()
        if char == b'"':
            return self.quoted()
        if char == b"{" or self.data[self.pos : self.pos + 2] == b"~{":
            # a literal, or a literal8 (RFC 3516 §4.3: either may carry BINARY data)
            end = self.data.index(b"}\r\n", self.pos)
            size = int(self.data[self.data.index(b"{", self.pos) + 1 : end].rstrip(b"+"))
            start = end + 3
            self.pos = start + size
            return Quoted(self.data[start : self.pos])
        return self.atom()

    def quoted(self) -> Quoted:
        self.pos += 1
        value = bytearray()
        while True:
            char = self.data[self.pos]
            self.pos += 1
            if char == 0x5C:  # backslash
                value.append(self.data[self.pos])
                self.pos += 1
            elif char == 0x22:
                return Quoted(bytes(value))
            else:
                value.append(char)

    def atom(self) -> str:
        start = self.pos
        depth = 0
        while self.pos < len(self.data):
            char = self.data[self.pos : self.pos + 1]
            if char == b"[":
                depth += 1
            elif char == b"]":
                depth -= 1
            elif depth == 0 and char in (b" ", b"(", b")", b"\r", b"\n"):
                break
            self.pos += 1
        return self.data[start : self.pos].decode("utf-8", "replace")


def render(token: Token) -> str:
    if isinstance(token, Quoted):
        return '"' + token.value.decode("utf-8", "replace").replace('"', '\\"') + '"'
    if isinstance(token, list):
        return "(" + " ".join(render(t) for t in token) + ")"
    return token


def _sorted_list(token: Token) -> Token:
    """A flag or attribute list whose order carries no meaning (RFC 3501 §7.2.6)."""
    if isinstance(token, list):
        return sorted(token, key=lambda t: render(t).upper())
    return token


def _string(token: Token) -> Token:
    """A mailbox astring: an atom and a quoted string name the same mailbox (§9), and
    INBOX in any case is INBOX (§5.1; Dovecot echoes the client's spelling in STATUS)."""
    if isinstance(token, str) and token.upper() != "NIL":
        token = Quoted(token.encode())
    if isinstance(token, Quoted) and token.value.upper() == b"INBOX":
        return Quoted(b"INBOX")
    return token


def _numbers(atoms: Sequence[Token]) -> list[int]:
    """Numbers of a SEARCH/SORT result or a sequence set, expanded."""
    out: list[int] = []
    for atom in atoms:
        for piece in render(atom).split(","):
            if ":" in piece:
                low, high = sorted(int(x) for x in piece.split(":"))
                out.extend(range(low, high + 1))
            elif piece.isdigit():
                out.append(int(piece))
    return out


def _seqset(token: Token) -> str:
    """A sequence set in one canonical form: server choices of ranges vs lists (RFC 3501 §9
    sequence-set; RFC 4731 §3.1 and RFC 4315 §3 allow any equivalent set)."""
    return ",".join(str(n) for n in _numbers([token]))


def _fold(token: Token) -> Token:
    """Upper-case a MIME token: types, subtypes, encodings, parameter names and charset
    values are case-insensitive (RFC 2045 §5.1, §6.1; RFC 2046 §4.1.2), so RFC 3501 §7.4.2
    lets a server send them in either case (Dovecot lower-cases, vpop3d upper-cases)."""
    if isinstance(token, Quoted):
        return Quoted(token.value.upper())
    return token


def _params(token: Token) -> Token:
    if not isinstance(token, list):
        return token
    out: list[Token] = []
    for name, value in zip(token[::2], token[1::2], strict=False):
        charset = isinstance(name, Quoted) and name.value.upper() == b"CHARSET"
        out += [_fold(name), _fold(value) if charset else value]
    return out


def _disposition(token: Token) -> Token:
    if isinstance(token, list) and len(token) == 2:
        return [_fold(token[0]), _params(token[1])]
    return token


def _body(token: Token, *, inner: bool = False) -> Token:
    """BODY / BODYSTRUCTURE with MIME tokens case-folded (see :func:`_fold`)."""
    if not isinstance(token, list) or not token:
        return token
    if isinstance(token[0], list):  # multipart: parts, subtype, [params disp lang loc]
        count = next(n for n, t in enumerate(token) if not isinstance(t, list))
        parts = [_body(t, inner=True) for t in token[:count]]
        rest = list(token[count:])
        if rest:
            rest[0] = _fold(rest[0])
        if len(rest) > 1:
            rest[1] = _params(rest[1])
        if len(rest) > 2:
            rest[2] = _disposition(rest[2])
        return parts + rest
    out = list(token)
    for index in (0, 1, 5):
        if index < len(out):
            out[index] = _fold(out[index])
    if len(out) > 2:
        out[2] = _params(out[2])
    kind = render(out[0]).upper(), render(out[1]).upper()
    extension = 7
    if kind[0] == '"TEXT"':
        if inner and len(out) > 7:
            # The CRLF before a boundary belongs to the delimiter (RFC 2046 §5.1.1), so a
            # part's last line has no terminator of its own: whether it counts towards the
            # "size of the body in text lines" (RFC 3501 §7.4.2) is left open; Dovecot does
            # not count it, vpop3d does.
            out[7] = "L"
        extension = 8
    elif kind == ('"MESSAGE"', '"RFC822"') and len(out) > 9:
        out[8] = _body(out[8], inner=inner)
        if inner:
            out[9] = "L"  # the same open question for the encapsulated message's last line
        extension = 10
    if len(out) > extension + 1:
        out[extension + 1] = _disposition(out[extension + 1])
    return out


def _squeeze(token: Token) -> Token:
    """ENVELOPE strings with runs of white space as one space: Dovecot collapses them in
    the Subject ("RE:   a" -> "RE: a"), vpop3d passes the unfolded field body on as it
    is (RFC 3501 §7.4.2 names the header field, RFC 5322 §3.2.2 makes FWS runs one space
    in structured fields only); the words themselves are compared."""
    if isinstance(token, Quoted):
        return Quoted(re.sub(rb"[ \t]+", b" ", token.value))
    if isinstance(token, list):
        return [_squeeze(t) for t in token]
    return token


def _fetch_items(items: list[Token]) -> str:
    pairs: dict[str, str] = {}
    for name, value in zip(items[::2], items[1::2], strict=False):
        key = render(name).upper()
        if key == "FLAGS":
            value = _sorted_list(value)
        if key in ("BODY", "BODYSTRUCTURE"):
            value = _body(value)
        if key == "ENVELOPE":
            value = _squeeze(value)
        if key == "MODSEQ":
            value = ["M"]  # RFC 7162 §3.1.1: mod-sequence values are the server's own
        pairs[key] = render(value)
    # RFC 3501 §7.4.2: the data items of one FETCH response come in no fixed order.
    return "(" + " ".join(f"{k} {pairs[k]}" for k in sorted(pairs)) + ")"


# CAPABILITY lists differ by design. The RFC 5530 codes are optional refinements of a NO
# ("SHOULD" at most, RFC 5530 §3), and the two servers pick them differently, so only
# the NO itself is compared.
_DROP_CODES = {
    "CAPABILITY",
    "UNAVAILABLE",
    "AUTHENTICATIONFAILED",
    "AUTHORIZATIONFAILED",
    "EXPIRED",
    "PRIVACYREQUIRED",
    "CONTACTADMIN",
    "NOPERM",
    "INUSE",
    "EXPUNGEISSUED",
    "CORRUPTION",
    "SERVERBUG",
    "CLIENTBUG",
    "CANNOT",
    "LIMIT",
    "OVERQUOTA",
    "ALREADYEXISTS",
    "NONEXISTENT",
}
_KEEP_CODE_ARGS = {"UIDNEXT", "UNSEEN"}


def _code(code: str) -> str:
    """A response code with only the parts the RFCs fix."""
    inner = code[1:-1]
    parts = Parser(inner.encode()).tokens()
    if not parts:
        return ""
    name = render(parts[0]).upper()
    if name in _DROP_CODES:
        return ""
    # UIDVALIDITY and mod-sequences are the server's own numbers (RFC 3501 §2.3.1.1,
    # RFC 7162 §3.1.1); BADCHARSET's list of charsets is optional (RFC 3501 §7.1).
    if name in ("UIDVALIDITY", "HIGHESTMODSEQ", "NOMODSEQ", "BADCHARSET"):
        return f"[{name}]"
    if name == "APPENDUID":  # RFC 4315 §3: uidvalidity then the UID set
        return f"[APPENDUID V {_seqset(parts[2])}]"
    if name == "COPYUID":
        return f"[COPYUID V {_seqset(parts[2])} {_seqset(parts[3])}]"
    if name == "PERMANENTFLAGS":
        return f"[PERMANENTFLAGS {render(_sorted_list(parts[1]))}]"
    if name in _KEEP_CODE_ARGS or name == "MODIFIED":
        if name == "MODIFIED":
            return f"[MODIFIED {_seqset(parts[1])}]"
        return "[" + " ".join(render(p) for p in parts) + "]"
    return f"[{name}]"


_STATUS_LINE = re.compile(r"^(\S+) (OK|NO|BAD|BYE|PREAUTH)(?: (\[[^\]]*(?:\[[^\]]*\])?[^\]]*\]))?")


def canonical_unit(unit: bytes, *, tagged: bool) -> str | None:
    """One response in canonical form, or None when it is left out of the comparison."""
    text = unit.decode("utf-8", "replace")
    if text.startswith("+"):
        return "+"  # a continuation request; its text is the server's own
    status = _STATUS_LINE.match(text)
    if status:
        who = "TAG" if tagged else "*"
        code = _code(status.group(3)) if status.group(3) else ""
        if not tagged and status.group(2) == "OK" and not code:
            return None  # informational untagged OK text (RFC 3501 §7.1.1)
        return f"{who} {status.group(2)} {code}".rstrip()
    tokens = Parser(unit).tokens()
    if len(tokens) < 2:
        return render(tokens)
    head = render(tokens[1]).upper()
    if head == "CAPABILITY":
        return None  # the servers' feature sets differ by design
    if head == "ENABLED":  # only what both servers implement (RFC 5161 §3.2)
        both = sorted(render(t).upper() for t in tokens[2:])
        return " ".join(["* ENABLED", *(c for c in both if c in ("CONDSTORE", "QRESYNC"))])
    if head == "ID":
        return "* ID"  # RFC 2971 §3.3: the server's own name and version
    if head in ("FLAGS",):
        return f"* FLAGS {render(_sorted_list(tokens[2]))}"
    if head in ("LIST", "LSUB"):
        attrs = _sorted_list(tokens[2])
        rest = [render(_string(t)) for t in tokens[4:5]]
        for extended in tokens[5:]:  # RFC 5258 §9 mbox-list-extended: astring tags
            data = extended if isinstance(extended, list) else []
            rest.append(render([_string(t) if n % 2 == 0 else t for n, t in enumerate(data)]))
        return " ".join([f"* {head}", render(attrs), render(tokens[3]), *rest])
    if head == "STATUS":
        items = tokens[3] if isinstance(tokens[3], list) else []
        pairs = {render(k).upper(): v for k, v in zip(items[::2], items[1::2], strict=False)}
        for volatile in ("UIDVALIDITY", "HIGHESTMODSEQ"):
            if volatile in pairs:
                pairs[volatile] = "V"
        body = " ".join(f"{k} {render(pairs[k])}" for k in sorted(pairs))
        return f"* STATUS {render(_string(tokens[2]))} ({body})"
    if head in ("SEARCH", "SORT"):
        numbers = [t for t in tokens[2:] if not isinstance(t, list)]
        modseq = " (MODSEQ M)" if any(isinstance(t, list) for t in tokens[2:]) else ""
        values = _numbers(numbers)
        if head == "SEARCH":  # RFC 3501 §7.2.5 fixes no order for SEARCH results
            values.sort()
        return f"* {head} " + " ".join(map(str, values)) + modseq
    if head == "NAMESPACE" and len(tokens) >= 3:
        # Only the personal namespace: other users' and shared namespaces (RFC 2342 §5)
        # depend on what the site shares, and the Dovecot peer shares nothing.
        return f"* NAMESPACE {render(tokens[2])}"
    if head == "ESEARCH":
        return "* ESEARCH " + _esearch(tokens[2:])
    if len(tokens) >= 3 and render(tokens[2]).upper() == "FETCH":
        items = tokens[3] if isinstance(tokens[3], list) else []
        return f"* {render(tokens[1])} FETCH {_fetch_items(items)}"
    return " ".join(render(t) for t in tokens)


def _esearch(tokens: list[Token]) -> str:
    """RFC 4731 §3.1: return options in any order; ALL a set in any equivalent form."""
    out: list[str] = []
    rest = tokens
    if rest and isinstance(rest[0], list):  # (TAG "x") correlator
        out.append("(TAG)")
        rest = rest[1:]
    if rest and render(rest[0]).upper() == "UID":
        out.append("UID")
        rest = rest[1:]
    pairs = []
    for name, value in zip(rest[::2], rest[1::2], strict=False):
        key = render(name).upper()
        shown = _seqset(value) if key == "ALL" else render(value)
        if key == "MODSEQ":
            shown = "M"
        pairs.append(f"{key} {shown}")
    return " ".join(out + sorted(pairs))


def canonical(responses: list[bytes], *, unordered: bool = False) -> list[str]:
    """A command's responses as comparable text; ``unordered`` sorts the untagged ones
    (SELECT's and LIST's untagged responses come in no fixed order, RFC 3501 §6.3.1, §6.3.8)."""
    lines = [canonical_unit(unit, tagged=not unit.startswith(b"*")) for unit in responses]
    kept = [line for line in lines if line is not None]
    if unordered and kept:
        kept = sorted(kept[:-1]) + kept[-1:]
    return kept


# ----------------------------------------------------------------- the two peers


@dataclass
class Peers:
    dovecot: Dovecot
    vpop3d: ServerProcess
    users: Iterator[str]

    def fresh_user(self) -> str:
        name = next(self.users)
        add_user(self.vpop3d, name, PASSWORD)
        return name

    def ports(self) -> dict[str, int]:
        return {"dovecot": self.dovecot.port, "vpop3d": self.vpop3d.ports["imap"]}


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """One Dovecot and one vpop3d for the whole module; each case takes a fresh user."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    # Not under pytest's temp root: that is private to root (0700), and Dovecot's auth and
    # mail processes run as other users that must reach the passwd file and maildirs.
    with tempfile.TemporaryDirectory(prefix="vpop3d-dovecot-") as directory:
        dovecot = Dovecot(Path(directory), USERS, special=SPECIAL)
        dovecot.start()
        base: Path = tmp_path_factory.mktemp("vpop3d")
        try:
            server = start_server(base, reset_database(base), listeners=("imap",))
        except BaseException:
            dovecot.stop()
            raise
        try:
            yield Peers(dovecot, server, iter(USERS))
        finally:
            server.stop()
            dovecot.stop()


def seed(wire: Wire, mailbox: str = "INBOX") -> None:
    for flags, date, message in CORPUS:
        done = wire.command(f'APPEND {mailbox} {flags} "{date}" ', message)
        assert done[-1].split()[1] == b"OK", done


Step: TypeAlias = str | tuple[str, bytes]


def _login(port: int, user: str) -> Wire:
    wire = Wire(port)
    done = wire.command(f"LOGIN {user} {PASSWORD}")
    assert done[-1].split()[1] == b"OK", done
    return wire


def _send(wire: Wire, step: Step, text: str) -> list[bytes]:
    if text[:1] in ("!", "?") and isinstance(step, tuple):
        return wire.command(text[1:] + " ", step[1])
    if text[:1] in ("!", "?"):  # a malformed command, sent as it is
        wire.counter += 1
        return wire.raw(b"C%d " % wire.counter + text[1:].encode() + b"\r\n")
    if text.startswith("="):
        return wire.pipelined(text[1:])
    if text == "IDLE":
        return wire.idle()
    if text == "DONE":
        return wire.done()
    if isinstance(step, tuple):
        return wire.command(text + " ", step[1])
    return wire.command(text)


def _pipelined(responses: list[bytes]) -> list[str]:
    """Responses to commands sent in one write, sorted, tagged ones with their own tags:
    Dovecot runs pipelined commands concurrently and interleaves their responses, vpop3d
    answers one after the other; RFC 3501 §5.5 allows both."""
    lines = []
    for unit in responses:
        tagged = not unit.startswith((b"*", b"+"))
        line = canonical_unit(unit, tagged=tagged)
        if line is not None:
            tag = unit.split(b" ", 1)[0].decode()
            lines.append(tag + line[3:] if tagged else line)
    return sorted(lines)


def _lines(verb: str, responses: list[bytes], condstore: bool) -> list[str]:
    """Canonical responses of one step, with the per-command allowances."""
    words = verb.upper().split()
    if verb[:1] in ("!", "?"):
        # Malformed commands: only whether the server refused it, and how (RFC 3501 §7.1:
        # BAD for a syntax error or unknown command, NO for a failure) is compared; with
        # "?" only that it was refused, where the RFC leaves BAD or NO open.
        tagged = responses[-1].split(b" ", 2)
        status = tagged[1].decode() if len(tagged) > 1 else "?"
        if verb.startswith("?") and status in ("NO", "BAD"):
            status = "NO|BAD"
        return [f"TAG {status}"]
    unordered = bool(words) and (
        words[0] in ("SELECT", "EXAMINE", "LIST", "LSUB") or words[:2] == ["UID", "EXPUNGE"]
    )
    if verb.startswith("="):
        return _pipelined(responses)
    lines = canonical(responses, unordered=unordered)
    if words[:1] == ["LIST"] and ("RETURN" in words or any(w[:1] == "(" for w in words[1:3])):
        lines = [_list_extended(line, upper_verb=verb.upper()) for line in lines]
        lines = sorted(lines[:-1]) + lines[-1:]
    if not re.search(r"\bUID\b", verb.upper()):
        # RFC 3501 §7.4.2 lets a server add data items to an untagged FETCH: vpop3d adds
        # UID to flag updates (STORE, another session's change), Dovecot does not.
        lines = [re.sub(r" UID \d+(?=[ )])", "", line) for line in lines]
    if words[:1] not in (["SELECT"], ["EXAMINE"]):
        # Outside SELECT/EXAMINE the servers disagree on when to repeat RECENT: Dovecot
        # sends it after an EXPUNGE of \Recent messages and not when a new message leaves
        # the count unchanged; vpop3d the other way round. RFC 3501 §7.3.2 ties it to a
        # change of the mailbox size; the \Recent flags themselves are compared through
        # FETCH FLAGS and SEARCH RECENT instead.
        lines = [line for line in lines if not line.endswith(" RECENT")]
    if not condstore:
        # RFC 7162 §3.1.2.1 wants HIGHESTMODSEQ on every SELECT from a server with
        # persistent mod-sequences (vpop3d); Dovecot sends it only once the client
        # has enabled CONDSTORE (§3.1), so it is compared only after that.
        lines = [line for line in lines if line != "* OK [HIGHESTMODSEQ]"]
    return lines


_SPECIAL_USE = {"\\ALL", "\\ARCHIVE", "\\DRAFTS", "\\FLAGGED", "\\JUNK", "\\SENT", "\\TRASH"}


def _list_extended(line: str, *, upper_verb: str) -> str:
    """An extended LIST's attributes without the ones the client did not ask for: with
    selection or return options Dovecot sends \\HasChildren/\\HasNoChildren only for
    RETURN (CHILDREN) and special-use attributes only for SPECIAL-USE, vpop3d always;
    RFC 5258 §4 ("MAY return") and RFC 6154 §2 allow both."""
    match = re.match(r"^\* LIST \(([^)]*)\)(.*)$", line)
    if match is None:
        return line
    keep = []
    for attribute in match.group(1).split():
        upper = attribute.upper()
        if upper in ("\\HASCHILDREN", "\\HASNOCHILDREN") and "CHILDREN" not in upper_verb:
            continue
        if upper in _SPECIAL_USE and "SPECIAL-USE" not in upper_verb:
            continue
        keep.append(attribute)
    return f"* LIST ({' '.join(keep)}){match.group(2)}"


def transcript(port: int, user: str, steps: list[Step]) -> list[list[str]]:
    """Run a case on one server. A step is a command; ``(text, literal)`` sends the
    literal after the text; "2|..." runs it on a second connection of the same user;
    "!..." sends a malformed line; a first step "UNSEEDED" skips the corpus."""
    wires: dict[str, Wire] = {}
    try:
        wires["1"] = _login(port, user)
        if steps[:1] == ["UNSEEDED"]:
            steps = steps[1:]
        else:
            seed(wires["1"])
        out = []
        condstore = {"1": False, "2": False}
        # Placeholders for this server's own numbers: {modseq} the last HIGHESTMODSEQ,
        # {modseq0} the first one ({modseq0+1} one more), {uidvalidity} the last UIDVALIDITY.
        values: dict[str, str] = {}
        for step in steps:
            verb = step if isinstance(step, str) else step[0]
            session = "1"
            if verb[:2] == "2|":
                session, verb = "2", verb[2:]
                if session not in wires:
                    wires[session] = _login(port, user)
            text = verb
            for name, value in values.items():
                text = text.replace("{" + name + "}", value)
            responses = _send(wires[session], step, text)
            for unit in responses:
                for name in ("HIGHESTMODSEQ", "UIDVALIDITY"):
                    found = re.search(rb"\[" + name.encode() + rb" (\d+)\]", unit)
                    if found:
                        key = "modseq" if name == "HIGHESTMODSEQ" else "uidvalidity"
                        values[key] = found.group(1).decode()
                        values.setdefault(key + "0", values[key])
                        values.setdefault(key + "0+1", str(int(values[key]) + 1))
            upper = verb.upper()
            condstore[session] |= "CONDSTORE" in upper or "MODSEQ" in upper
            lines = _lines(verb, responses, condstore[session])
            out.append([f"> {'2|' if session == '2' else ''}{verb}", *lines])
        return out
    finally:
        for wire in wires.values():
            wire.close()


def compare(peers: Peers, steps: list[Step]) -> None:
    user = peers.fresh_user()
    ports = peers.ports()
    want = transcript(ports["dovecot"], user, steps)
    got = transcript(ports["vpop3d"], user, steps)
    if got != want:
        flat_want = [line for block in want for line in block]
        flat_got = [line for block in got for line in block]
        diff = difflib.unified_diff(flat_want, flat_got, "dovecot", "vpop3d", lineterm="", n=20)
        pytest.fail("vpop3d differs from Dovecot:\n" + "\n".join(diff), pytrace=False)


# ----------------------------------------------------------------- the cases


DIGEST = (
    b"Subject: digest\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/digest; boundary="d"\r\n\r\n'
    b"--d\r\n\r\nSubject: first in digest\r\n\r\nOne.\r\n"
    b"--d\r\nContent-Type: text/plain\r\n\r\nNot a message.\r\n"
    b"--d--\r\n"
)
# RFC 3501 §7.4.2 extension data: MD5, disposition, language, location
EXTENSIONS = (
    b"Subject: extension fields\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii; format=flowed\r\n"
    b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    b"Content-Disposition: inline; filename=notes.txt\r\n"
    b"Content-Language: en, de\r\n"
    b"Content-Location: http://example.com/notes.txt\r\n\r\nnotes\r\n"
)
# RFC 2231 parameter charsets. Not continuations ("filename*0", "filename*1"): Dovecot
# joins them into one "filename", vpop3d passes them on as they are; RFC 3501 §7.4.2
# body-fld-param does not say which.
RFC2231 = (
    b"Subject: rfc2231\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream; name*=utf-8''%E2%82%AC%20rates.txt\r\n"
    b'Content-Disposition: attachment; filename="name.txt"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
)
# Not an address without a domain: RFC 3501 §7.4.2 gives no host name for it; Dovecot
# says "MISSING_DOMAIN", vpop3d ".MISSING-HOST-NAME.".
ADDRESSES = (
    b'To: "john doe"@example.com, <@route.example:user@example.com>\r\n'
    b"Cc: user@example.com (A comment), =?UTF-8?Q?M=C3=BCller=2C_Hans?= <h@example.com>\r\n"
    b"From: Team:;\r\n"
    b"Subject: addresses\r\n\r\nbody\r\n"
)

HTML = (
    b"Subject: offer\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
    b'<p>Our <b>spring</b> sale: <a href="http://example.com/promo">click</a></p>\r\n'
)

S = "SELECT INBOX"
HEADERS = "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]"

CASES: list[object] = [
    # RFC 3501 §6.3.1, §6.3.2, §6.3.10: selecting and STATUS
    pytest.param([S], id="select"),
    pytest.param(["EXAMINE INBOX"], id="examine"),
    pytest.param([S, "EXAMINE Trash", "SELECT INBOX"], id="reselect"),
    pytest.param(["SELECT nosuch", "NOOP"], id="select-missing"),
    pytest.param(["STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)"], id="status"),
    pytest.param(["STATUS nosuch (MESSAGES)"], id="status-missing"),
    pytest.param([S, "STATUS Trash (MESSAGES UNSEEN)", "CLOSE", S], id="status-recent-gone"),
    # RFC 3501 §6.4.5: FETCH of every item
    pytest.param([S, "FETCH 1:* (FLAGS)"], id="fetch-flags"),
    pytest.param([S, "FETCH 1:* (UID INTERNALDATE)"], id="fetch-internaldate"),
    pytest.param([S, "FETCH 1:* RFC822.SIZE"], id="fetch-size"),
    pytest.param([S, "FETCH 1:* ENVELOPE"], id="fetch-envelope"),
    pytest.param([S, "FETCH 1:* BODY"], id="fetch-body"),
    pytest.param([S, "FETCH 1:* BODYSTRUCTURE"], id="fetch-bodystructure"),
    pytest.param([S, "FETCH 1:* FAST", "FETCH 2 ALL", "FETCH 3 FULL"], id="fetch-macros"),
    pytest.param([S, "FETCH 1:* BODY.PEEK[]"], id="fetch-whole"),
    pytest.param([S, "FETCH 1:* BODY.PEEK[HEADER]"], id="fetch-header"),
    pytest.param([S, "FETCH 1:* BODY.PEEK[TEXT]"], id="fetch-text"),
    pytest.param([S, "FETCH 1:* " + HEADERS], id="fetch-header-fields"),
    pytest.param(
        [S, "FETCH 1:* BODY.PEEK[HEADER.FIELDS.NOT (Date Message-Id To Cc)]"],
        id="fetch-header-fields-not",
    ),
    pytest.param(
        [S, "FETCH 1:* (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME])"],
        id="fetch-parts",
    ),
    pytest.param(
        [S, "FETCH 4 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BODY.PEEK[2.2.MIME])"],
        id="fetch-nested-rfc822",
    ),
    pytest.param(
        [S, "FETCH 4 (BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.1.MIME])"],
        id="fetch-nested-fields",
    ),
    pytest.param([S, "FETCH 1 (BODY.PEEK[3] BODY.PEEK[1.2])"], id="fetch-missing-part"),
    pytest.param(
        [
            S,
            "FETCH 1:* (BODY.PEEK[]<0.20> BODY.PEEK[TEXT]<5.10> BODY.PEEK[HEADER]<9999.5>)",
            "FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)]<3.7> BODY.PEEK[1]<2.4>)",
        ],
        id="fetch-partial",
    ),
    # <100.0> is not tested: RFC 3501 §9 wants a non-zero length (vpop3d says BAD),
    # Dovecot accepts it.
    pytest.param(
        [S, "FETCH 3 BODY.PEEK[2]<10.30>", "FETCH 8 BODY.PEEK[]<7000.1000>"], id="partial-2"
    ),
    pytest.param([S, "FETCH 2 BODY[1]", "FETCH 2 FLAGS"], id="fetch-sets-seen"),
    pytest.param([S, "FETCH 2 (RFC822.HEADER RFC822.TEXT)", "FETCH 2 FLAGS"], id="fetch-rfc822"),
    pytest.param([S, "FETCH 6 RFC822", "FETCH 6 FLAGS"], id="fetch-rfc822-whole"),
    pytest.param(["EXAMINE INBOX", "FETCH 2 BODY[TEXT]", "FETCH 2 FLAGS"], id="examine-no-seen"),
    pytest.param(
        [S, "UID FETCH 1:* FLAGS", "UID FETCH 5:3 UID", "UID FETCH 99:* UID"], id="uid-fetch"
    ),
    pytest.param([S, "FETCH 12 FLAGS", "FETCH 0 FLAGS", "FETCH 1 NOSUCH"], id="fetch-bad"),
    # RFC 3501 §6.4.4: SEARCH
    pytest.param(
        [
            S,
            "SEARCH ALL",
            "SEARCH ANSWERED",
            "SEARCH UNANSWERED",
            "SEARCH DELETED",
            "SEARCH UNDELETED",
            "SEARCH DRAFT",
            "SEARCH UNDRAFT",
            "SEARCH FLAGGED",
            "SEARCH UNFLAGGED",
            "SEARCH SEEN",
            "SEARCH UNSEEN",
            "SEARCH NEW",
            "SEARCH OLD",
            "SEARCH RECENT",
            "SEARCH KEYWORD work",
            "SEARCH UNKEYWORD work",
            "SEARCH KEYWORD $Forwarded",
        ],
        id="search-flags",
    ),
    pytest.param(
        [
            S,
            "SEARCH FROM foobar",
            "SEARCH FROM Fred",
            "SEARCH TO dave",
            "SEARCH CC alice",
            "SEARCH CC team",
            "SEARCH BCC nobody",
            "SEARCH SUBJECT meeting",
            'SEARCH SUBJECT "re: afternoon"',
            "SEARCH HEADER Message-Id reply-5",
            'SEARCH HEADER X-Mailer ""',
            'SEARCH HEADER In-Reply-To ""',
            "SEARCH HEADER Content-Type mixed",
        ],
        id="search-headers",
    ),
    pytest.param(
        [
            S,
            "SEARCH BODY zebra",
            "SEARCH TEXT zebra",
            "SEARCH BODY munich",
            "SEARCH TEXT mooch",
            # Not "BODY mooch": message 4's body holds "mooch" only inside the header of its
            # attached message/rfc822. RFC 3501 §6.4.4 says "in the body of the message";
            # vpop3d searches that text, Dovecot only the parts' contents.
            "SEARCH BODY Line",
            "SEARCH TEXT inner",
        ],
        id="search-text",
    ),
    pytest.param(
        [
            S,
            "SEARCH SINCE 10-Feb-1994",
            "SEARCH BEFORE 10-Feb-1994",
            "SEARCH ON 10-Feb-1994",
            # NOT 7: message 7 has no Date header. RFC 3501 §6.4.4 does not say what
            # SENTBEFORE/SENTSINCE make of that; vpop3d falls back to the INTERNALDATE (as
            # RFC 5256 §2.2 does for SORT), Dovecot takes it as the earliest date.
            "SEARCH SENTSINCE 10-Feb-1994 NOT 7",
            "SEARCH SENTBEFORE 10-Feb-1994 NOT 7",
            "SEARCH SENTON 7-Feb-1994",
            "SEARCH SENTON 13-Feb-1994",
        ],
        id="search-dates",
    ),
    pytest.param(
        [S, "SEARCH LARGER 1500", "SEARCH SMALLER 600", "SEARCH LARGER 100000"], id="search-sizes"
    ),
    pytest.param(
        [
            S,
            "SEARCH 2:4",
            "SEARCH 2,5:*",
            "SEARCH *",
            "SEARCH UID 3:5",
            "SEARCH UID 7:*",
            "SEARCH NOT 2:4",
            "SEARCH 1:3 SEEN",
            "UID SEARCH 2:4",
            "UID SEARCH UID 1,3,100",
        ],
        id="search-sets",
    ),
    pytest.param(
        [
            S,
            "SEARCH OR SEEN FLAGGED",
            "SEARCH NOT SEEN",
            "SEARCH OR (FROM fred SUBJECT meeting) NOT DELETED",
            "SEARCH OR OR ANSWERED DRAFT KEYWORD work",
            "SEARCH NOT OR SEEN DELETED",
            "SEARCH (SEEN (NOT DELETED)) SUBJECT meeting",
            "SEARCH NOT NOT SEEN",
        ],
        id="search-boolean",
    ),
    pytest.param(
        [
            S,
            ("SEARCH CHARSET UTF-8 SUBJECT", "Grüße".encode()),
            ("SEARCH CHARSET UTF-8 FROM", "Jörg".encode()),
            ("SEARCH CHARSET UTF-8 BODY", "Straße".encode()),
            ("SEARCH CHARSET UTF-8 TEXT", "café".encode()),
            ("SEARCH CHARSET UTF-8 SUBJECT", "café".encode()),
            "SEARCH CHARSET US-ASCII SUBJECT meeting",
        ],
        id="search-utf8",
    ),
    pytest.param([S, "SEARCH CHARSET X-NO-SUCH-CHARSET TEXT x", "NOOP"], id="search-badcharset"),
    pytest.param(
        [
            S,
            "SEARCH RETURN (MIN MAX COUNT) SEEN",
            "SEARCH RETURN (ALL) UNSEEN",
            "SEARCH RETURN () FLAGGED",
            "UID SEARCH RETURN (COUNT MIN) ALL",
            "SEARCH RETURN (COUNT) KEYWORD $Forwarded",
        ],
        id="esearch",
    ),
    # RFC 5256: SORT and THREAD
    pytest.param(
        [
            S,
            "SORT (ARRIVAL) UTF-8 ALL",
            "SORT (SUBJECT) UTF-8 ALL",
            "SORT (REVERSE DATE) UTF-8 ALL",
            "SORT (FROM) UTF-8 ALL",
            # NOT 7: its To is an empty group ("undisclosed-recipients:;"). RFC 5256 §3
            # sorts on the first To address's mailbox; Dovecot takes the group name, vpop3d
            # the empty string (no address at all): the RFC does not settle groups.
            "SORT (TO) UTF-8 NOT 7",
            "SORT (CC) UTF-8 ALL",
            "SORT (SIZE) UTF-8 ALL",
            "SORT (REVERSE SIZE) UTF-8 SEEN",
            "UID SORT (DATE) UTF-8 ALL",
        ],
        id="sort",
    ),
    pytest.param([S, "SORT (DISPLAYFROM) UTF-8 ALL"], id="sort-display"),
    pytest.param([S, "THREAD ORDEREDSUBJECT UTF-8 ALL"], id="thread-orderedsubject"),
    pytest.param(
        [S, "THREAD REFERENCES UTF-8 ALL", "UID THREAD REFERENCES UTF-8 ALL"],
        id="thread-references",
    ),
    # RFC 3501 §6.4.6: STORE
    pytest.param(
        [
            S,
            "STORE 1 +FLAGS (\\Flagged)",
            "STORE 1 -FLAGS (\\Seen)",
            "STORE 2 FLAGS (\\Answered custom)",
            "STORE 3 +FLAGS.SILENT (\\Deleted)",
            "STORE 4 -FLAGS.SILENT ($Forwarded)",
            "STORE 5:6 FLAGS.SILENT ()",
            "FETCH 1:* FLAGS",
        ],
        id="store",
    ),
    pytest.param(
        # Only real changes: on a no-op STORE vpop3d still reports the flags, Dovecot
        # does not; RFC 3501 §6.4.6 allows both.
        [S, "UID STORE 2,4 +FLAGS (\\Seen)", "UID STORE 8 -FLAGS (work)", "FETCH 1:* FLAGS"],
        id="uid-store",
    ),
    # Not compared: STORE after EXAMINE. vpop3d answers NO [READ-ONLY] as RFC 3501 §6.3.2
    # wants ("no changes to the permanent state"); Dovecot answers OK and changes nothing.
    # RFC 7162: CONDSTORE
    pytest.param(
        [
            "SELECT INBOX (CONDSTORE)",
            "FETCH 1:2 (FLAGS MODSEQ)",
            "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)",
            "FETCH 1 (FLAGS)",
            "SEARCH MODSEQ 1",
        ],
        id="condstore",
    ),
    pytest.param(
        [
            "ENABLE CONDSTORE",
            S,
            "STORE 2 +FLAGS (\\Seen)",
            "STORE 5 +FLAGS (\\Flagged)",
            "NOOP",
            "FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})",
            "SELECT INBOX",
            "FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})",
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})",
            "SEARCH MODSEQ {modseq}",
        ],
        id="condstore-changedsince",
    ),
    # RFC 3501 §6.4.7, RFC 4315, RFC 6851: COPY, MOVE
    pytest.param(
        [
            S,
            "COPY 1:2 Archive",
            "STATUS Archive (MESSAGES UIDNEXT)",
            "SELECT Archive",
            "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)",
        ],
        id="copy",
    ),
    pytest.param(
        [S, "UID COPY 3,5 Trash", "UID COPY 99 Trash", "UID COPY 9:100 Archive"], id="uid-copy"
    ),
    pytest.param([S, "COPY 1 nosuch", "COPY 1 INBOX"], id="copy-trycreate"),
    pytest.param(
        [S, "MOVE 2 Trash", "FETCH 1:* UID", "SELECT Trash", "FETCH 1 (UID FLAGS)"], id="move"
    ),
    pytest.param([S, "UID MOVE 4:6 Archive", "SEARCH ALL"], id="uid-move"),
    # RFC 3501 §6.4.3, RFC 4315 §2.1: EXPUNGE
    pytest.param([S, "EXPUNGE", "FETCH 1:* UID"], id="expunge"),
    pytest.param(
        [S, "STORE 1:3 +FLAGS (\\Deleted)", "EXPUNGE", "FETCH 1:* UID"], id="expunge-many"
    ),
    pytest.param(
        [S, "STORE 1:* +FLAGS.SILENT (\\Deleted)", "UID EXPUNGE 2:3", "FETCH 1:* UID"],
        id="uid-expunge",
    ),
    pytest.param([S, "CLOSE", "STATUS INBOX (MESSAGES)"], id="close-expunges"),
    pytest.param(["EXAMINE INBOX", "CLOSE", "STATUS INBOX (MESSAGES)"], id="close-examine"),
    pytest.param([S, "UNSELECT", "STATUS INBOX (MESSAGES)"], id="unselect"),
    # RFC 3501 §6.3.3-§6.3.9: mailboxes
    # Parents are created explicitly: RFC 3501 §6.3.3 has a server create the superior
    # names of "CREATE a/b/c" (vpop3d makes real mailboxes of them); Dovecot's maildir only
    # shows them as \Noselect placeholders, which changes LIST, SUBSCRIBE, CREATE, RENAME.
    pytest.param(
        [
            "CREATE a",
            "CREATE a/b",
            "CREATE a/b/c",
            "CREATE x",
            "CREATE x/",
            'LIST "" *',
            'LIST "" %',
            'LIST "" a/%',
            "LIST a %",
            'LIST "" ""',
            'LIST "" inbox',
            'LIST "" a*',
            'LIST "" %/%',
            'LIST "" nosuch',
        ],
        id="list",
    ),
    pytest.param(
        [
            "CREATE a",
            "CREATE a/b",
            "SUBSCRIBE a/b",
            "SUBSCRIBE INBOX",
            'LSUB "" *',
            'LSUB "" %',
            'LSUB "" a',
            "UNSUBSCRIBE a/b",
            'LSUB "" *',
        ],
        # RFC 3501 §6.3.9: an unsubscribed parent is listed (\\Noselect) only where "%"
        # stops above a subscribed name, never for "*" or a plain name.
        id="lsub",
    ),
    pytest.param(
        ["CREATE a", "CREATE a/b", "SUBSCRIBE a/b", 'LSUB "" %', 'LSUB "" a/%', 'LSUB "" %/%'],
        id="lsub-percent",
    ),
    pytest.param(
        ["CREATE a", "CREATE a", "CREATE INBOX", "DELETE nosuch", "DELETE INBOX", 'LIST "" a'],
        id="create-delete",
    ),
    pytest.param(
        # RFC 3501 §6.3.4: a mailbox with inferiors may be deleted; its name stays, \Noselect.
        ["CREATE a", "CREATE a/b", "DELETE a", "SELECT a", "STATUS a/b (MESSAGES)"],
        id="delete-parent",
    ),
    pytest.param(
        [
            "CREATE a",
            "CREATE a/b",
            "CREATE a/b/c",
            "CREATE x",
            "RENAME a z",
            'LIST "" *',
            "RENAME nosuch q",
            "RENAME z x",
            "STATUS z/b (MESSAGES)",
            "STATUS a/b (MESSAGES)",
        ],
        id="rename",
    ),
    # Not compared: RENAME INBOX. vpop3d moves the messages to the new name and leaves INBOX
    # empty (RFC 3501 §6.3.5); Dovecot's maildir refuses with NO [CANNOT].
    # RFC 3501 §6.3.11, RFC 4315: APPEND
    pytest.param(
        [
            (
                'APPEND Drafts (\\Draft kw) "01-Jan-2000 00:00:00 +0000"',
                b"Subject: x\r\n\r\nbody\r\n",
            ),
            ("APPEND Drafts", b"Subject: y\r\n\r\nbody\r\n"),
            "SELECT Drafts",
            "FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE UID)",
        ],
        id="append",
    ),
    pytest.param([("APPEND nosuch", b"Subject: x\r\n\r\nbody\r\n")], id="append-trycreate"),
    pytest.param(
        [
            S,
            ("APPEND INBOX (\\Seen)", b"Subject: z\r\n\r\nlate\r\n"),
            "NOOP",
            "FETCH * (UID FLAGS)",
        ],
        id="append-selected",
    ),
    pytest.param(
        [
            S,
            ("SEARCH CHARSET UTF-8 BODY", "crème".encode()),
            "SEARCH BODY xylophone",
            "SEARCH TEXT xylophone",
            'SEARCH SUBJECT "afternoon meeting"',
            "SEARCH SENTON 16-Feb-1994",
            "SEARCH SENTSINCE 16-Feb-1994",
            "SEARCH ON 8-Feb-1994",
            "SEARCH ON 7-Feb-1994",
            "SEARCH TEXT Blurdybloop",
            "SEARCH TO c@example.com",
            'SEARCH FROM "last, first"',
        ],
        id="search-decoding",
    ),
    pytest.param(
        [
            S,
            "SEARCH 5:2",
            "SEARCH *:10",
            "UID SEARCH *",
            "UID SEARCH UID 100:*",
            "SEARCH UNSEEN 2:*",
            "SEARCH OR 1 3:4 NOT 4",
            "SEARCH LARGER 368 SMALLER 370",
            "SEARCH SMALLER 368",
        ],
        id="search-sets-2",
    ),
    pytest.param(
        [
            S,
            "FETCH 1 (BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (X-NOPE)])",
            "FETCH 9 BODY.PEEK[HEADER.FIELDS (TO)]",
            "FETCH 9 ENVELOPE",
            "FETCH 4 (BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[2.1]<0.5>)",
            "FETCH 11 (BODY.PEEK[1] BODY.PEEK[TEXT])",
            "FETCH 3 BODY.PEEK[HEADER.FIELDS (CONTENT-TYPE)]",
            "FETCH 3 BODY.PEEK[2.MIME]<0.20>",
        ],
        id="fetch-edges",
    ),
    pytest.param(
        [S, "FETCH 1 BODY.PEEK[1.MIME]", "FETCH 4 BODY.PEEK[1.HEADER]"], id="fetch-mime-edges"
    ),
    pytest.param(
        [
            S,
            "STORE 1 +FLAGS ($Junk NonJunk)",
            # Not "-FLAGS (nosuch)": Dovecot then announces "nosuch" in FLAGS (it defines the
            # keyword), vpop3d reports the unchanged flags; RFC 3501 §6.4.6, §7.2.6 allow both.
            "STORE 1:* FLAGS (\\Seen)",
            "FETCH 1:3 FLAGS",
        ],
        id="store-edges",
    ),
    pytest.param(
        [S, "STORE 2 +FLAGS (\\Recent)", ("APPEND INBOX (\\Recent)", b"Subject: r\r\n\r\nr\r\n")],
        # RFC 3501 §9 "flag" excludes \\Recent (§2.3.2: only the server sets it): BAD.
        id="recent-not-a-client-flag",
    ),
    # RFC 7162 §3.2: QRESYNC
    pytest.param(
        [
            "ENABLE QRESYNC",
            S,
            "STORE 3 +FLAGS (\\Deleted)",
            "EXPUNGE",
            "STORE 5 +FLAGS (\\Flagged)",
            "UNSELECT",
            "SELECT INBOX (QRESYNC ({uidvalidity} {modseq0}))",
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq0} VANISHED)",
        ],
        id="qresync",
    ),
    # RFC 3501 §5.1: names, and reference + pattern (§6.3.8)
    pytest.param(
        [
            'CREATE "My Folder"',
            "CREATE Entw&APw-rfe",
            'LIST "" *',
            'STATUS "My Folder" (MESSAGES)',
            'SELECT "my folder"',
            # Not modified UTF-7 (RFC 3501 §5.1.3) but a valid astring: Dovecot says NO,
            # vpop3d BAD.
            "?CREATE bad&name",
        ],
        id="mailbox-names",
    ),
    pytest.param(
        [
            "CREATE a",
            "CREATE a/b",
            "CREATE a/b/c",
            "LIST a/ %",
            "LIST a *",
            "LIST a/b %",
            'LIST "" a/b/',
        ],
        id="list-reference",
    ),
    # Not "RENAME a a/b": Dovecot refuses a rename under the name itself, vpop3d moves
    # "a" (and its inferiors) down a level; RFC 3501 §6.3.5 does not forbid it.
    pytest.param(
        ["CREATE a", "RENAME INBOX/x y", "RENAME a INBOX", "RENAME a a"], id="rename-edges"
    ),
    pytest.param(
        [
            ('APPEND INBOX () "01-Jan-2000 23:00:00 -0500"', b"Subject: d\r\n\r\nd\r\n"),
            ('APPEND INBOX "1-Jan-2000 01:02:03 +0000"', b"Subject: e\r\n\r\ne\r\n"),
            S,
            "FETCH 12:* (FLAGS INTERNALDATE)",
        ],
        id="append-edges",
    ),
    pytest.param(
        [
            "CREATE a",
            "SUBSCRIBE a",
            "DELETE a",
            'LSUB "" *',
            # Not "SUBSCRIBE nosuch": RFC 3501 §6.3.6 lets the server check that the
            # mailbox exists (Dovecot: NO) or not (vpop3d: OK).
            "UNSUBSCRIBE nosuch",
            'LSUB "" *',
        ],
        id="subscriptions-outlive-mailboxes",
    ),
    pytest.param(
        [
            S,
            "SORT (FROM SUBJECT) UTF-8 ALL",
            "SORT (REVERSE ARRIVAL) US-ASCII SEEN",
            "SORT (DATE) UTF-8 SUBJECT meeting",
            "SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
            "THREAD REFERENCES UTF-8 NOT DELETED",
            "THREAD ORDEREDSUBJECT UTF-8 SUBJECT meeting",
            "UID SEARCH RETURN (ALL) UID 1:*",
            "SEARCH RETURN (MIN MAX) LARGER 1000000",
        ],
        id="sort-thread-more",
    ),
    pytest.param(
        [
            "select inbox",
            "fetch 1 (flags uid)",
            "uid fetch 2 (body.peek[header.fields (subject)])",
            "search subject MEETING",
            "Store 1 +Flags.Silent (\\seen \\FLAGGED)",
            "fetch 1 flags",
        ],
        id="case-insensitive",
    ),
    pytest.param(
        [
            S,
            "COPY 3 INBOX",
            "FETCH 12 (FLAGS INTERNALDATE)",
            "STORE 12 +FLAGS (\\Deleted)",
            # Not EXPUNGE after EXAMINE: vpop3d answers NO [READ-ONLY] (RFC 3501 §6.3.2),
            # Dovecot OK without expunging; either way nothing is removed.
            "EXAMINE INBOX",
            "CLOSE",
            "STATUS INBOX (MESSAGES RECENT UNSEEN)",
        ],
        id="copy-to-self-and-examine-expunge",
    ),
    pytest.param(
        [S, "!COPY 99 Trash", "!STORE 99 +FLAGS (\\Seen)", "!SEARCH 99", "!FETCH 5:99 UID", "NOOP"],
        id="out-of-range",
    ),
    # RFC 3516: BINARY
    pytest.param(
        [
            S,
            "FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1])",
            "FETCH 3 (BINARY.PEEK[2]<0.16> BINARY.SIZE[2])",
            "FETCH 11 (BINARY.PEEK[1] BINARY.SIZE[1])",
            "FETCH 10 BINARY.PEEK[1]",
            "FETCH 1 BINARY.SIZE[1]",
        ],
        id="binary",
    ),
    # RFC 5182: SEARCHRES
    pytest.param(
        [
            S,
            "SEARCH RETURN (SAVE) SEEN",
            "FETCH $ UID",
            "SEARCH $ FLAGGED",
            "UID SEARCH RETURN (SAVE MIN) FLAGGED",
            "UID FETCH $ FLAGS",
            "SEARCH RETURN (SAVE) LARGER 1000000",
            "FETCH $ UID",
        ],
        id="searchres",
    ),
    # RFC 5258: LIST-EXTENDED
    pytest.param(
        [
            "CREATE a",
            "CREATE a/b",
            "CREATE c",
            "SUBSCRIBE a/b",
            "SUBSCRIBE c",
            'LIST (SUBSCRIBED) "" *',
            'LIST "" * RETURN (SUBSCRIBED)',
            'LIST (SPECIAL-USE) "" *',
            'LIST "" (INBOX Tr*)',
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
        ],
        id="list-extended",
    ),
    # Structures only a few messages have, appended as messages 12 and up
    pytest.param(
        [
            ("APPEND INBOX", DIGEST),
            ("APPEND INBOX", EXTENSIONS),
            ("APPEND INBOX", RFC2231),
            ("APPEND INBOX", b"Subject: empty\r\n\r\n"),
            ("APPEND INBOX", b"Subject: no body at all\r\n"),
            S,
            "FETCH 12:* BODYSTRUCTURE",
            "FETCH 12:* BODY",
            "FETCH 12 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2.HEADER])",
            "FETCH 15:* (RFC822.SIZE BODY.PEEK[TEXT] BODY.PEEK[HEADER])",
        ],
        id="bodystructure-edges",
    ),
    pytest.param(
        [
            ("APPEND INBOX", ADDRESSES),
            S,
            "FETCH 12 ENVELOPE",
            "SEARCH TO john",
            "SEARCH TO route.example",
        ],
        id="envelope-edges",
    ),
    # RFC 3501 §5.5 pipelining and RFC 7888 non-synchronising literals, in one write
    pytest.param(
        [
            S,
            "={tag} STORE 1 +FLAGS (\\Flagged)\r\n{tag} FETCH 1 FLAGS\r\n{tag} SEARCH FLAGGED\r\n",
            "={tag} SEARCH SUBJECT {7+}\r\nmeeting\r\n",
            "={tag} APPEND Drafts (\\Seen) {21+}\r\nSubject: lp\r\n\r\nbody\r\n\r\n"
            "{tag} STATUS Drafts (MESSAGES)\r\n",
            "={tag} NOOP\r\n{tag} FOO\r\n{tag} NOOP\r\n",
        ],
        id="pipelining",
    ),
    pytest.param(
        [
            "SELECT inbox",
            "STATUS iNbOx (MESSAGES SIZE)",
            "COPY 1 inbox",
            "CREATE INBOX/sub",
            'LIST "" INBOX*',
            # Not 'LIST "" inbox/%': only INBOX itself is case-insensitive (RFC 3501 §5.1);
            # Dovecot extends that to its children, vpop3d does not.
            ("SEARCH CHARSET UTF-8 HEADER From", "Zoë".encode()),
            "SORT (SUBJECT) US-ASCII ALL",
            "SORT (SUBJECT) X-NO-SUCH-CHARSET ALL",
        ],
        id="inbox-names-and-charsets",
    ),
    # Not DELETE of the selected mailbox: Dovecot then ends the session with BYE, vpop3d
    # goes on; RFC 3501 §6.3.4 does not say.
    pytest.param(
        [
            S,
            "STORE 11 +FLAGS (\\Deleted)",
            "EXPUNGE",
            ("APPEND INBOX", b"Subject: after expunge\r\n\r\nx\r\n"),
            "FETCH * UID",
            "STATUS INBOX (UIDNEXT MESSAGES UNSEEN)",
            "CLOSE",
            S,
        ],
        id="uids-not-reused",
    ),
    pytest.param(
        [
            "ENABLE QRESYNC",
            S,
            "STORE 2:3,5 +FLAGS.SILENT (\\Deleted)",
            "EXPUNGE",
            "STORE 1 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 1",
            "SELECT INBOX (QRESYNC ({uidvalidity} {modseq0} 1:20 (1,3 1,3)))",
            "EXAMINE Trash (QRESYNC ({uidvalidity} 1))",
        ],
        id="qresync-vanished",
    ),
    pytest.param(
        ["ENABLE QRESYNC", S, "MOVE 2:3 Trash", "UID MOVE 5 Trash", "FETCH 1:* UID"],
        id="qresync-move",
    ),
    pytest.param(
        [
            "SELECT INBOX (CONDSTORE)",
            "STORE 1:3 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Answered)",
            "UID STORE 2,4 (UNCHANGEDSINCE {modseq0}) -FLAGS (\\Answered)",
            "STORE 5 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)",
            "STATUS Trash (HIGHESTMODSEQ)",
            # Changed after the SELECT: how the servers numbered the appends differs.
            'SEARCH MODSEQ "/flags/\\\\draft" all {modseq0+1}',
            "FETCH 1:4 (FLAGS MODSEQ)",
        ],
        id="condstore-unchangedsince",
    ),
    pytest.param(
        [
            S,
            "SORT (REVERSE TO) UTF-8 NOT 7",
            "SORT (REVERSE CC DATE) UTF-8 ALL",
            "SORT (ARRIVAL REVERSE ARRIVAL) UTF-8 ALL",
        ],
        id="sort-ties",
    ),
    pytest.param(
        [
            ("APPEND INBOX", b"Message-Id: <dup@x>\r\nSubject: dup one\r\n\r\n1\r\n"),
            ("APPEND INBOX", b"Message-Id: <dup@x>\r\nSubject: dup two\r\n\r\n2\r\n"),
            (
                "APPEND INBOX",
                b"Message-Id: <self@x>\r\nReferences: <self@x>\r\nSubject: self\r\n\r\n3\r\n",
            ),
            (
                "APPEND INBOX",
                b"Message-Id: <kid@x>\r\nIn-Reply-To: <dup@x>\r\nSubject: Re: dup one\r\n\r\n4\r\n",
            ),
            ("APPEND INBOX", b"Subject: no id at all\r\n\r\n5\r\n"),
            S,
            "THREAD REFERENCES UTF-8 ALL",
            "THREAD ORDEREDSUBJECT UTF-8 ALL",
        ],
        id="thread-edges",
    ),
    pytest.param(
        [
            S,
            "FETCH 1,1,2:1 UID",
            "FETCH 3:1 UID",
            "FETCH *:* UID",
            "UID FETCH *:* UID",
            "STORE 2 +FLAGS (\\Seen \\Seen kw kw)",
            "SEARCH 1,1,2 ALL ALL",
            "SEARCH NOT (SEEN)",
            "SEARCH HEADER SUBJECT MEETING",
            "!SEARCH KEYWORD \\Seen",
            "!SEARCH UNKEYWORD",
        ],
        id="odd-but-valid",
    ),
    pytest.param(
        [("?CREATE", "Grüße".encode()), ("?SELECT", "Grüße".encode()), 'LIST "" G*'],
        id="eight-bit-mailbox-name",
    ),
    # RFC 7162 §3.1: a CHANGEDSINCE or MODSEQ use enables CONDSTORE for the session
    pytest.param(
        [S, "FETCH 1 (FLAGS) (CHANGEDSINCE 1)", "STORE 2 +FLAGS (\\Seen)", "FETCH 3 FLAGS"],
        id="condstore-enabled-by-changedsince",
    ),
    pytest.param(
        [S, "SEARCH MODSEQ 1 SEEN", "STORE 2 +FLAGS (\\Seen)"],
        id="condstore-enabled-by-search",
    ),
    pytest.param(
        [
            S,
            "!FETCH 1 RFC822.PEEK",
            "!FETCH 1 BODY[HEADER.FIELDS ()]",
            "!FETCH 1 BODY[TEXT.MIME]",
            # Not BODY[1.0] (RFC 3501 §9 section-part takes nz-numbers) nor BINARY[HEADER]
            # (RFC 3516 §8 section-binary takes part numbers only): vpop3d says BAD,
            # Dovecot OK.
            "!STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)",
            "NOOP",
        ],
        id="malformed-fetch-sections",
    ),
    pytest.param(
        [
            ("APPEND INBOX", HTML),
            S,
            "SEARCH BODY example.com/promo",
            "SEARCH BODY spring",
            'SEARCH TEXT "<b>"',
        ],
        id="search-html-body",
    ),
    pytest.param(
        [
            ("APPEND INBOX", b"Subject: no final newline\r\n\r\nlast line"),
            S,
            # Not BODYSTRUCTURE: the line count of a body whose last line has no CRLF is
            # the open question described in _body (vpop3d 1, Dovecot 0).
            "FETCH 12 (RFC822.SIZE BODY.PEEK[TEXT])",
            ("SEARCH CHARSET UTF-8 HEADER Subject", "Grüße".encode()),
            ("SEARCH CHARSET UTF-8 FROM", "Müller".encode()),
        ],
        id="unterminated-and-decoded-headers",
    ),
    pytest.param(
        [
            "CREATE a",
            "CREATE a/b",
            # Not 'LIST "a/b" ""': for a non-rooted reference the root "MAY be the null
            # string" (RFC 3501 §6.3.8): vpop3d says "", Dovecot "a/".
            'LIST "a" ""',
            "DELETE a",
            "STATUS a (MESSAGES)",
            "SUBSCRIBE iNbOx",
            'LSUB "" INBOX',
            "!APPEND INBOX 01-Jan-2000",
        ],
        id="list-roots-and-noselect",
    ),
    pytest.param(
        [
            "ENABLE CONDSTORE",
            S,
            "2|" + S,
            "2|STORE 3 -FLAGS (\\Seen)",
            "NOOP",
            "2|STORE 4 +FLAGS.SILENT (\\Deleted)",
            "2|EXPUNGE",
            "NOOP",
            "FETCH 3:4 (FLAGS MODSEQ)",
        ],
        id="condstore-other-session",
    ),
    pytest.param(
        [
            "ID NIL",
            'ID ("name" "conformance" "version" "1")',
            "ENABLE CONDSTORE X-NO-SUCH-EXTENSION",
            "ENABLE QRESYNC",
            S,
            "!ID (",
        ],
        id="id-enable",
    ),
    pytest.param(
        [
            S,
            # Not OLDER/YOUNGER: vpop3d does not advertise WITHIN (RFC 5032) and says BAD.
            "SORT (DISPLAYFROM REVERSE ARRIVAL) UTF-8 ALL",
            "SORT (DISPLAYTO) UTF-8 NOT 7",
            "UID SEARCH RETURN (MIN MAX) UID 3:9 UNSEEN",
        ],
        id="display-sort",
    ),
    # RFC 3516 §4.4: APPEND of a literal8 holding NUL
    pytest.param(
        [
            "={tag} APPEND INBOX ~{75+}\r\nSubject: nul\r\nMIME-Version: 1.0\r\n"
            "Content-Transfer-Encoding: binary\r\n\r\na\x00b\r\n\r\n",
            S,
            # Not BODYSTRUCTURE or RFC822.SIZE: Dovecot stores such a message re-encoded in
            # base64, vpop3d as it came; RFC 3516 §4.4 leaves the stored form open.
            "FETCH * (BINARY.SIZE[1] BINARY.PEEK[1])",
        ],
        id="binary-append",
    ),
    # Sessions and state (RFC 3501 §6.1, §6.2, §6.3.10, RFC 2342)
    # Not "FETCH 1:*" on the empty mailbox: "*" is defined only for a non-empty one
    # (RFC 3501 §9 seq-number); Dovecot answers BAD, vpop3d OK with nothing.
    pytest.param(
        ["UNSEEDED", S, "SEARCH ALL", "UID FETCH 1:* UID", "STATUS INBOX (UIDNEXT)"], id="empty"
    ),
    pytest.param(["NAMESPACE", "NOOP", "CHECK", S, "CHECK", "LOGOUT"], id="misc"),
    pytest.param(
        # CHILDREN and SPECIAL-USE asked for: with RETURN options Dovecot sends those
        # attributes only on request (RFC 5258 §4 and RFC 6154 §2 let either be done).
        [
            'LIST "" % RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))',
            'LIST "" INBOX RETURN (CHILDREN SPECIAL-USE STATUS (RECENT))',
        ],
        id="list-status",
    ),
    # RFC 3501 §5.2, §7.4.1: what a second session sees, and when
    pytest.param(
        [
            S,
            "2|" + S,
            "STORE 1 +FLAGS (\\Deleted)",
            "2|NOOP",
            "EXPUNGE",
            "2|FETCH 1 UID",
            "2|SEARCH ALL",
            "2|STORE 2 +FLAGS.SILENT (\\Seen)",
            "2|NOOP",
            "2|FETCH 1:* UID",
        ],
        id="two-sessions-expunge",
    ),
    pytest.param(
        [
            S,
            "2|" + S,
            "STORE 2 +FLAGS (\\Flagged)",
            "2|NOOP",
            ("APPEND INBOX", b"Subject: new\r\n\r\nnew\r\n"),
            "2|NOOP",
            "2|FETCH * (UID FLAGS)",
            "2|SEARCH RECENT",
        ],
        id="two-sessions-news",
    ),
    pytest.param([S, "2|EXAMINE INBOX", "2|SEARCH RECENT", "SEARCH RECENT"], id="recent-once"),
    pytest.param(
        [
            S,
            "2|SELECT Archive",
            "COPY 1:2 Archive",
            "2|NOOP",
            "2|FETCH 1:* (UID FLAGS)",
            "2|SEARCH RECENT",
            "STATUS Archive (MESSAGES RECENT UNSEEN)",
        ],
        id="copy-seen-by-other-session",
    ),
    pytest.param(
        [
            "UNSEEDED",
            S,
            "SEARCH RETURN (ALL COUNT MIN MAX) ALL",
            "UID SEARCH RETURN () ALL",
            "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.5>)",
        ],
        id="empty-esearch",
    ),
    # RFC 2177: IDLE reports another session's changes, EXPUNGE included
    pytest.param(
        [
            S,
            "2|" + S,
            # One kind of change per IDLE: how a server orders or merges several (EXISTS
            # before or after EXPUNGEs, flags of a message expunged meanwhile) is its own.
            "IDLE",
            "2|STORE 2 +FLAGS (\\Flagged)",
            "DONE",
            "IDLE",
            ("2|APPEND INBOX", b"Subject: pushed\r\n\r\npushed\r\n"),
            "DONE",
            "2|STORE 1 +FLAGS.SILENT (\\Deleted)",
            "NOOP",
            "IDLE",
            "2|EXPUNGE",
            "DONE",
            # Not FLAGS: which of two sessions with INBOX selected is "first notified" of
            # the new message and gets \\Recent (RFC 3501 §2.3.2) differs: Dovecot gives it
            # to the appending session, vpop3d to the idling one; exactly one has it in both.
            "FETCH * (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
            "2|SEARCH UNSEEN",
        ],
        id="idle",
    ),
    # Malformed commands: both refuse, and with the same status (RFC 3501 §7.1)
    pytest.param(
        [
            S,
            "!FOO",
            "!FETCH",
            "!FETCH 1",
            "!FETCH 1 (FLAGS",
            "!FETCH a FLAGS",
            "!FETCH 1 BODY[NOSUCH]",
            "!FETCH 1 BODY[]<a>",
            "!FETCH 1 FLAGS extra",
            "!STORE 1 +FLAGZ (\\Seen)",
            "!SEARCH NOSUCHKEY",
            "!SEARCH (SEEN",
            "!SEARCH LARGER x",
            "!SEARCH OR SEEN",
            "NOOP",
        ],
        id="malformed",
    ),
    # A second session: Dovecot hangs up after 20 bad commands in one session.
    pytest.param(
        [
            S,
            "!UID FOO 1",
            "!COPY 1",
            "!SELECT",
            "!CREATE",
            '!LIST ""',
            "!STATUS INBOX (NOSUCH)",
            "!STATUS INBOX",
            "!SORT (NOSUCH) UTF-8 ALL",
            "!SORT ARRIVAL UTF-8 ALL",
            "!THREAD NOSUCH UTF-8 ALL",
            "!EXPUNGE 1",
            "!LOGIN fred secret",
            "!FETCH 1 (BODY[HEADER.FIELDS])",
            "!SEARCH CHARSET",
            # Not here, because Dovecot accepts them where the grammar does not and vpop3d
            # answers BAD: "STORE 1 FLAGS" without flags (RFC 3501 §9 store-att-flags),
            # "NOOP extra", "ENABLE" without a capability (RFC 5161 §3), and "SEARCH BEFORE
            # 32-Feb-1994" (a valid date-day, but no such date).
            "NOOP",
        ],
        id="malformed-2",
    ),
    pytest.param(
        ["!FETCH 1 FLAGS", "!STORE 1 +FLAGS (\\Seen)", "!EXPUNGE", "!CLOSE"], id="no-mailbox"
    ),
]


@pytest.mark.parametrize("steps", CASES)
def test_same_as_dovecot(peers: Peers, steps: list[Step]) -> None:
    """vpop3d answers the scripted session as Dovecot does, up to what the RFCs leave open."""
    compare(peers, steps)


# ----------------------------------------------------------------- the comparison itself


def _same(left: bytes, right: bytes) -> bool:
    return canonical([left, b"C1 OK done\r\n"]) == canonical([right, b"C1 OK fine\r\n"])


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (b'* STATUS "INBOX" (MESSAGES 1)\r\n', b"* STATUS inbox (MESSAGES 1)\r\n"),
        (b'* 1 FETCH (BODY[] "ab")\r\n', b"* 1 FETCH (BODY[] {2}\r\nab)\r\n"),
        (b"* 1 FETCH (UID 4 FLAGS (\\Seen a))\r\n", b"* 1 FETCH (FLAGS (a \\Seen) UID 4)\r\n"),
        (b"* SEARCH 3 1 2\r\n", b"* SEARCH 1 2 3\r\n"),
        (b'* ESEARCH (TAG "C1") ALL 1:3,5\r\n', b'* ESEARCH (TAG "C1") ALL 1,2,3,5\r\n'),
        (
            b'* 1 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 1))\r\n',
            b'* 1 FETCH (BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1))\r\n',
        ),
        (b"* OK [UIDVALIDITY 1] x\r\n", b"* OK [UIDVALIDITY 99] y\r\n"),
    ],
)
def test_canonical_equates_what_the_rfcs_leave_open(left: bytes, right: bytes) -> None:
    """Quoting, INBOX case, item and flag order, set forms, MIME case, UIDVALIDITY match."""
    assert _same(left, right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\n"),
        (b"* 1 FETCH (UID 4)\r\n", b"* 1 FETCH (UID 5)\r\n"),
        (b"* SEARCH 1 2\r\n", b"* SEARCH 1 2 3\r\n"),
        (b"* SORT 1 2 3\r\n", b"* SORT 3 2 1\r\n"),
        (b'* STATUS "a" (MESSAGES 1)\r\n', b'* STATUS "A" (MESSAGES 1)\r\n'),
        (b'* 1 FETCH (BODY[] "ab")\r\n', b'* 1 FETCH (BODY[] "aB")\r\n'),
        (
            b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 1))\r\n',
            b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 2))\r\n',
        ),
        (b"* OK [UIDNEXT 5] x\r\n", b"* OK [UIDNEXT 6] x\r\n"),
        (b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"),
    ],
)
def test_canonical_keeps_real_differences(left: bytes, right: bytes) -> None:
    """Flags, UIDs, result sets, SORT order, names, contents, line counts still differ."""
    assert not _same(left, right)


def test_canonical_compares_the_completion_status() -> None:
    """A tagged NO is not a tagged OK, and a response code counts."""
    ok = canonical([b"C1 OK [READ-WRITE] done\r\n"])
    assert ok != canonical([b"C1 NO [READ-WRITE] done\r\n"])
    assert ok != canonical([b"C1 OK [READ-ONLY] done\r\n"])
    assert ok == canonical([b"C7 OK [READ-WRITE] other words\r\n"])
