"""Line framing and dot-terminated bodies (vpop3d.proto.line)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vpop3d.proto.line import DotBodyReader, LineBuffer, LineTooLong


def lines(buffer: LineBuffer) -> list[bytes | LineTooLong]:
    out: list[bytes | LineTooLong] = []
    while (item := buffer.next_line()) is not None:
        out.append(item)
    return out


def test_lines_are_split_on_lf_and_crlf():
    """CRLF and lone LF both end a command line; the terminator is removed."""
    buffer = LineBuffer(100)
    buffer.feed(b"one\r\ntwo\nthr")
    assert lines(buffer) == [b"one", b"two"]
    buffer.feed(b"ee\r\n")
    assert lines(buffer) == [b"three"]


def test_long_line_reported_once():
    """An over-long line is dropped and reported as LineTooLong at its end."""
    buffer = LineBuffer(10)
    buffer.feed(b"x" * 25)
    assert lines(buffer) == []
    buffer.feed(b"yy\r\nok\r\n")
    assert lines(buffer) == [LineTooLong(10), b"ok"]


def test_take_and_unread():
    """Raw reads take exact counts and unread puts bytes back in front."""
    buffer = LineBuffer(10)
    buffer.feed(b"abcdef")
    assert buffer.take(4) == b"abcd"
    buffer.unread(b"cd")
    assert buffer.take(10) == b"cdef"
    assert len(buffer) == 0


def read_body(chunks: list[bytes]) -> tuple[bytes, bool, DotBodyReader, bytes]:
    pieces: list[bytes] = []
    reader = DotBodyReader(pieces.append, max_line=1000)
    buffer = LineBuffer(100)
    done = False
    for chunk in chunks:
        buffer.feed(chunk)
        done = reader.pump(buffer)
        if done:
            break
    return b"".join(pieces), done, reader, buffer.take(len(buffer))


def test_body_ends_at_crlf_dot_crlf_and_leaves_the_rest():
    """The terminator line is consumed; bytes after it stay for the next command."""
    body, done, reader, rest = read_body([b"a\r\n..b\r\n.\r\nQUIT\r\n"])
    assert (body, done, rest) == (b"a\r\n.b\r\n", True, b"QUIT\r\n")
    assert not reader.faults.bare_cr
    assert not reader.faults.bare_lf


def test_lf_dot_lf_is_not_an_end():
    """`\\n.\\n` does not end the body and is flagged."""
    _, done, reader, _ = read_body([b"a\n.\nb\r\n"])
    assert not done
    assert reader.faults.bare_lf


def test_long_unterminated_line_is_streamed():
    """A line longer than the piece size is passed on before its LF arrives."""
    pieces: list[bytes] = []
    reader = DotBodyReader(pieces.append, max_line=0)
    buffer = LineBuffer(100)
    buffer.feed(b"." + b"x" * 70000 + b"\r")
    assert not reader.pump(buffer)
    assert sum(map(len, pieces)) == 70000  # dot unstuffed, CR held back
    buffer.feed(b"\n.\r\n")
    assert reader.pump(buffer)
    assert b"".join(pieces) == b"x" * 70000 + b"\r\n"
    assert not reader.faults.bare_cr


messages = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=8,
)


@given(messages, st.data())
def test_any_split_gives_the_same_body(message_lines: list[bytes], data: st.DataObject):
    """Splitting a dot-stuffed body anywhere yields the same unstuffed body."""
    stuffed = b"".join(
        (b"." + line if line.startswith(b".") else line) + b"\r\n" for line in message_lines
    )
    wire = stuffed + b".\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    body, done, reader, rest = read_body(chunks)
    assert done
    assert rest == b""
    assert body == b"".join(line + b"\r\n" for line in message_lines)
    assert not reader.faults.bare_lf
    assert not reader.faults.bare_cr


def reference_read(wire: bytes, max_line: int) -> tuple[bytes, bool, bool, bool, bytes] | None:
    """A plain line-by-line reading of RFC 5321 §4.5.2 to compare the reader with."""
    body, bare_lf, bare_cr, long_line = b"", False, False, False
    position, after_crlf = 0, True
    while (end := wire.find(b"\n", position)) >= 0:
        line, position = wire[position : end + 1], end + 1
        crlf = line.endswith(b"\r\n")
        if after_crlf and line == b".\r\n":
            return body, bare_lf, bare_cr, long_line, wire[position:]
        content = line[:-2] if crlf else line[:-1]
        bare_lf |= not crlf
        bare_cr |= b"\r" in content
        long_line |= len(content) + 2 > max_line
        body += line[1:] if line.startswith(b".") else line
        after_crlf = crlf
    return None


tokens = st.sampled_from([b"a", b"bc", b".", b"\r", b"\n", b"\r\n", b"\r\n.", b"x" * 30])


@given(st.lists(tokens, max_size=60), st.data())
def test_reader_matches_the_reference(parts: list[bytes], data: st.DataObject):
    """Fast and slow paths together read exactly what the plain reference reads."""
    wire = b"".join(parts) + b"\r\n.\r\nNEXT"
    expected = reference_read(wire, 40)
    assert expected is not None
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    pieces: list[bytes] = []
    reader = DotBodyReader(pieces.append, max_line=40)
    buffer = LineBuffer(100)
    for start, stop in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        buffer.feed(wire[start:stop])
        if reader.pump(buffer):
            break
    assert reader.done
    faults = reader.faults
    got = (b"".join(pieces), faults.bare_lf, faults.bare_cr, faults.long_line)
    assert got == expected[:4]
    assert buffer.take(len(buffer)) + wire[stop:] == expected[4]
