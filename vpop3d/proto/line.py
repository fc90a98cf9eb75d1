"""Byte-stream framing shared by line-oriented protocols (sans-IO, no Twisted).

``LineBuffer`` holds everything received and not yet consumed, so a protocol can
switch between command lines, raw byte counts (SMTP BDAT, IMAP literals) and a
dot-terminated body without losing pipelined bytes. ``DotBodyReader`` reads a body
that ends with ``CRLF.CRLF`` (RFC 5321 §4.5.2, RFC 1939 §3), undoes dot-stuffing
and reports the line-ending faults that make "smuggling" possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LF = 0x0A
CR = 0x0D


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line went past the limit; its bytes were thrown away up to its LF."""

    limit: int


class LineBuffer:
    """Received bytes not consumed yet, handed out as lines or raw counts."""

    __slots__ = ("_buf", "_discarding", "_pos", "max_line")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line  # octets including the line terminator
        self._buf = bytearray()
        self._pos = 0
        self._discarding = False

    def __len__(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def clear(self) -> None:
        """Drop everything buffered (e.g. plaintext after STARTTLS, RFC 3207 §6)."""
        self._buf.clear()
        self._pos = 0
        self._discarding = False

    def next_line(self) -> bytes | LineTooLong | None:
        """The next line without its LF (and without a CR right before it).

        None: no complete line yet. ``LineTooLong``: a line went past ``max_line``;
        it is reported once, when its LF arrives, and its bytes are dropped.
        """
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            if len(self) > self.max_line:
                # Keep memory bounded: drop the line now, report it at its LF.
                self._discarding = True
                self._buf.clear()
                self._pos = 0
            return None
        start = self._pos
        self._pos = end + 1
        self._compact()
        if self._discarding or end + 1 - start > self.max_line:
            self._discarding = False
            return LineTooLong(self.max_line)
        stop = end - 1 if end > start and self._buf[end - 1] == CR else end
        return bytes(self._buf[start:stop])

    def take(self, count: int) -> bytes:
        """Up to ``count`` raw bytes (fewer when fewer are buffered)."""
        data = bytes(self._buf[self._pos : self._pos + count])
        self._pos += len(data)
        self._compact()
        return data

    def take_line_segment(self) -> tuple[bytes, bool]:
        """Bytes up to and including the next LF: (segment, complete).

        Without an LF, returns what is buffered with ``complete`` False.
        """
        end = self._buf.find(b"\n", self._pos)
        stop = len(self._buf) if end < 0 else end + 1
        data = bytes(self._buf[self._pos : stop])
        self._pos = stop
        self._compact()
        return data, end >= 0

    def take_complete_lines(self) -> bytes:
        """Everything up to and including the last LF buffered (b"" without one)."""
        end = self._buf.rfind(b"\n", self._pos)
        if end < 0:
            return b""
        data = bytes(self._buf[self._pos : end + 1])
        self._pos = end + 1
        self._compact()
        return data

    def unread(self, data: bytes) -> None:
        """Put back bytes taken but not used (they are read again first)."""
        if not data:
            return
        if self._pos >= len(data):
            self._pos -= len(data)
            self._buf[self._pos : self._pos + len(data)] = data
        else:
            self._buf[: self._pos] = b""
            self._buf[0:0] = data
            self._pos = 0

    def _compact(self) -> None:
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0


@dataclass(slots=True)
class BodyFaults:
    """What was wrong with a dot-terminated body (all False: clean)."""

    bare_lf: bool = False
    bare_cr: bool = False
    long_line: bool = False


class DotBodyReader:
    """Reads one dot-terminated body out of a ``LineBuffer`` into ``sink``.

    The body ends only at ``CRLF.CRLF``: a lone ``.`` line after a bare LF
    (``\\n.\\r\\n``, ``\\n.\\n``) or a ``.`` between bare CRs (``\\r.\\r``) does not end
    it; such bytes are passed on and flagged in ``faults`` so the caller can refuse
    the message after the real end (the SMTP smuggling defence).
    """

    # An unterminated line longer than this is passed on in pieces.
    _PIECE = 65536

    def __init__(self, sink: Callable[[bytes], None], max_line: int = 0) -> None:
        self._sink = sink
        self._max_line = max_line  # octets including CRLF; 0: no limit
        self._line_start = True  # the next byte starts a line
        self._after_crlf = True  # the previous line ended with CRLF
        self._line_length = 0  # octets of the current line passed on so far
        self.faults = BodyFaults()
        self.done = False

    def pump(self, buffer: LineBuffer) -> bool:
        """Consume what ``buffer`` holds; True once the terminating line was read."""
        slow = 0  # octets that must go through the line-by-line path
        while not self.done and len(buffer):
            if slow <= 0 and self._line_start:
                # Fast path: pass whole CRLF lines up to the next dot line in one go.
                block = buffer.take_complete_lines()
                found = block.find(b"\n.")
                cut = 0 if block.startswith(b".") else len(block) if found < 0 else found + 1
                prefix = block[:cut]
                if prefix and self._plain(prefix):
                    self._sink(prefix)
                    self._after_crlf = True
                    buffer.unread(block[cut:])
                    continue
                buffer.unread(block)
                slow = len(prefix) if prefix else 1  # the dot line goes the slow way
            segment, complete = buffer.take_line_segment()
            if not complete:
                if len(segment) < self._PIECE:
                    buffer.unread(segment)
                    return False
                # Pass on all but a trailing CR (it may pair with the next LF).
                keep = 1 if segment.endswith(b"\r") else 0
                piece = segment[: len(segment) - keep]
                buffer.unread(segment[len(piece) :])
                self._partial(piece)
                continue
            slow -= len(segment)
            self._complete(segment)
        return self.done

    def _plain(self, block: bytes) -> bool:
        """Whole CRLF lines (none starting with a dot) with no bare CR or LF."""
        crlf = block.count(b"\r\n")
        if block.count(b"\n") != crlf or block.count(b"\r") != crlf:
            return False
        if self._max_line and len(block) > self._max_line - 2:
            longest = max(map(len, block.split(b"\r\n")))
            self._check_length(longest + 2)
        return True

    def _partial(self, piece: bytes) -> None:
        if not piece:
            return
        if self._line_start and piece.startswith(b"."):
            piece = piece[1:]  # RFC 5321 §4.5.2: drop the stuffed dot
        self._line_start = False
        if b"\r" in piece:
            self.faults.bare_cr = True
        self._line_length += len(piece)
        self._check_length(self._line_length)
        self._sink(piece)

    def _complete(self, line: bytes) -> None:
        crlf = line.endswith(b"\r\n")
        if self._line_start and self._after_crlf and crlf and line == b".\r\n":
            self.done = True
            return
        content = line[:-2] if crlf else line[:-1]
        if not crlf:
            self.faults.bare_lf = True
        if b"\r" in content:
            self.faults.bare_cr = True
        if self._line_start and line.startswith(b"."):
            line = line[1:]
        self._check_length(self._line_length + len(content) + 2)
        self._line_start = True
        self._after_crlf = crlf
        self._line_length = 0
        self._sink(line)

    def _check_length(self, length: int) -> None:
        if self._max_line and length > self._max_line:
            self.faults.long_line = True
