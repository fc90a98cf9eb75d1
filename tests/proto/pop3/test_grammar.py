"""POP3 grammar: command parsing and body encoding (RFC 1939 §3, RFC 2449 §4)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.proto.pop3 import grammar
from vpop3d.proto.pop3.grammar import (
    Apop,
    Auth,
    BodyEncoder,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    POP3SyntaxError,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"USER fred", User("fred")),
        (b"user fred@example.test", User("fred@example.test")),
        (b"PASS let me in", Pass("let me in")),
        (
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
            Apop("mrose", "c4c9334bac560ecc979e58001b3e22fb"),
        ),
        (b"AUTH", Auth(None)),
        (b"AUTH plain", Auth("PLAIN")),
        (b"AUTH PLAIN AGZyZWQAbGV0bWVpbg==", Auth("PLAIN", "AGZyZWQAbGV0bWVpbg==")),
        (b"AUTH PLAIN =", Auth("PLAIN", "=")),
        (b"CAPA", Capa()),
        (b"STAT", Stat()),
        (b"LIST", List()),
        (b"LIST 2", List(2)),
        (b"UIDL", Uidl()),
        (b"Uidl 07", Uidl(7)),
        (b"RETR 1", Retr(1)),
        (b"TOP 10 0", Top(10, 0)),
        (b"DELE 1", Dele(1)),
        (b"RSET", Rset()),
        (b"NOOP", Noop()),
        (b"QUIT", Quit()),
        (b"STLS", Stls()),
        (b"UTF8", Utf8()),
    ],
)
def test_parse_valid_commands(line: bytes, command: Command) -> None:
    """Each RFC 1939/2449/2595/5034/6856 command parses to its dataclass."""
    assert grammar.parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"", "Empty command"),
        (b"XYZZY", "Unknown command"),
        (b"USER", "Wrong number of arguments"),
        (b"USER a b", "Wrong number of arguments"),
        (b"USER  fred", "Invalid argument syntax"),
        (b"USER " + b"a" * 41, "Argument too long"),
        (b"PASS", "Missing password"),
        (b"APOP fred xyz", "Invalid APOP digest"),
        (b"LIST 0", "Invalid message number"),
        (b"LIST -1", "Invalid message number"),
        (b"LIST 1 2", "Wrong number of arguments"),
        (b"RETR", "Wrong number of arguments"),
        (b"TOP 1 x", "Invalid line count"),
        (b"DELE \xd9\xa3", "Invalid message number"),  # Arabic-Indic digit three
        (b"QUIT now", "Wrong number of arguments"),
        (b"AUTH PLAIN a b", "Invalid AUTH syntax"),
        (b"AUTH PL@IN", "Invalid mechanism name"),
        (b"NOOP\x00", "Invalid characters in command"),
        (b"USER \xff", "Invalid UTF-8 in command"),
        (b"NOOP " + b"x" * 250, "Line too long"),
    ],
)
def test_parse_errors(line: bytes, text: str) -> None:
    """Malformed lines raise POP3SyntaxError with a client-safe text."""
    with pytest.raises(POP3SyntaxError) as caught:
        grammar.parse_command(line)
    assert caught.value.text == text


def test_line_limit_counts_crlf() -> None:
    """253 octets plus CRLF is the longest accepted command (RFC 2449 §4)."""
    assert grammar.parse_command(b"PASS " + b"p" * 248) == Pass("p" * 248)
    with pytest.raises(POP3SyntaxError):
        grammar.parse_command(b"PASS " + b"p" * 249)


@given(st.binary(max_size=300))
def test_parse_only_raises_its_own_error(line: bytes) -> None:
    """Any byte string parses or raises POP3SyntaxError, nothing else."""
    with contextlib.suppress(POP3SyntaxError):
        grammar.parse_command(line)


def test_redact_hides_secrets() -> None:
    """Session logs never show passwords, APOP digests or AUTH data."""
    assert grammar.redact(b"PASS secret") == b"PASS ***"
    assert grammar.redact(b"apop fred 0123") == b"APOP ***"
    assert grammar.redact(b"AUTH PLAIN AGZyZWQ=") == b"AUTH PLAIN ***"
    assert grammar.redact(b"AUTH PLAIN") == b"AUTH PLAIN"
    assert grammar.redact(b"USER fred") == b"USER fred"


def test_encode_lines_stuffs_dots() -> None:
    """Multi-line replies dot-stuff and end with '.'."""
    assert grammar.encode_lines("+OK", [".x", "y"]) == b"+OK\r\n..x\r\ny\r\n.\r\n"
    assert grammar.encode_lines("+OK 1 2", None) == b"+OK 1 2\r\n"


# ----------------------------------------------------------------- bodies


def reference(data: bytes, body_lines: int | None = None, *, strip: bool = False) -> bytes:
    """Straightforward whole-message encoding to compare the streaming one with."""
    text = data.replace(b"\r\n", b"\n")
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if body_lines is not None:
        try:
            blank = lines.index(b"")
        except ValueError:
            blank = len(lines)
        lines = lines[: blank + 1 + body_lines]
    if strip:
        while lines and lines[-1] == b"":
            lines.pop()
    out = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    return out + b".\r\n"


def encode(chunks: list[bytes], body_lines: int | None = None, *, strip: bool = False) -> bytes:
    encoder = BodyEncoder(body_lines, strip_trailing_blank_lines=strip)
    out = b"".join(encoder.feed(chunk) for chunk in chunks)
    return out + encoder.finish()


body_text = st.lists(
    st.sampled_from([b"a", b".", b"..", b"\r\n", b"\n", b"x y", b"\r", b""]), max_size=40
).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@given(body_text, st.lists(st.integers(min_value=0), max_size=6))
def test_streaming_equals_reference_for_any_split(data: bytes, cuts: list[int]) -> None:
    """RETR encoding is independent of how the stored body is chunked."""
    assert encode(split(data, cuts)) == encode([data])
    if b"\r" not in data.replace(b"\r\n", b""):
        assert encode([data]) == reference(data)


@given(body_text, st.lists(st.integers(min_value=0), max_size=6))
def test_strip_mode_equals_reference_for_any_split(data: bytes, cuts: list[int]) -> None:
    """The trailing-blank-line fix is chunking-independent too."""
    assert encode(split(data, cuts), strip=True) == encode([data], strip=True)
    if b"\r" not in data.replace(b"\r\n", b""):
        assert encode([data], strip=True) == reference(data, strip=True)


@given(
    body_text,
    st.lists(st.integers(min_value=0), max_size=6),
    st.integers(min_value=0, max_value=5),
)
def test_top_equals_reference_for_any_split(data: bytes, cuts: list[int], body_lines: int) -> None:
    """TOP output is the header, blank line and n body lines, however chunked."""
    assert encode(split(data, cuts), body_lines) == encode([data], body_lines)
    if b"\r" not in data.replace(b"\r\n", b""):
        assert encode([data], body_lines) == reference(data, body_lines)


def test_body_without_final_newline_gets_one() -> None:
    """A body that does not end in a line end still ends with CRLF.CRLF."""
    assert encode([b"a\r\nb"]) == b"a\r\nb\r\n.\r\n"


def test_empty_body() -> None:
    """An empty message is just the terminator."""
    assert encode([]) == b".\r\n"


def test_cr_split_from_lf_across_chunks() -> None:
    """A CRLF split between two chunks is still one line end."""
    assert encode([b"a\r", b"\n.b\r\n"]) == b"a\r\n..b\r\n.\r\n"


def test_top_stops_reading_when_done() -> None:
    """The encoder reports done once TOP has its lines, so the file is not read on."""
    encoder = BodyEncoder(1)
    assert encoder.feed(b"H: v\r\n\r\nline1\r\nline2\r\n") == b"H: v\r\n\r\nline1\r\n.\r\n"
    assert encoder.done
    assert encoder.feed(b"more") == b""
    assert encoder.finish() == b""
