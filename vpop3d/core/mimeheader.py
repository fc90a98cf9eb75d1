"""Header fields of a stored message: scanning, unfolding, RFC 2047 and MIME parameters.

Everything works on the stored bytes; text is decoded only where a caller asks for it
(SEARCH, SORT), with charset fallbacks instead of errors because mail lies about
charsets.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
FOLD = re.compile(rb"\r?\n(?=[ \t])")  # a line break that continues a field


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field exactly as stored (name, folding and line end included)."""

    name: str  # as written; compare with .lower()
    raw: bytes

    @property
    def value(self) -> bytes:
        """The text after the colon, unfolded and stripped (RFC 5322 §2.2.3)."""
        body = self.raw.split(b":", 1)[1]
        return FOLD.sub(b"", body).strip(b" \t\r\n")


def scan_header(data: bytes) -> tuple[list[HeaderField], int]:
    """Split header fields off ``data``; return them and where the body starts.

    The header ends after the first empty line (which belongs to the header), or before
    the first line that is neither a field nor a continuation (no empty line at all).
    """
    fields: list[tuple[str, list[bytes]]] = []
    pos = 0
    size = len(data)
    while pos < size:
        eol = data.find(b"\n", pos)
        end = size if eol < 0 else eol + 1
        line = data[pos:end]
        if line in (b"\r\n", b"\n"):
            pos = end
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
        else:
            match = _FIELD_NAME.match(line)
            if match is None:
                break
            name = line[: match.end() - 1].rstrip(b" \t").decode("ascii")
            fields.append((name, [line]))
        pos = end
    return [HeaderField(name, b"".join(lines)) for name, lines in fields], pos


def first_field(fields: list[HeaderField], name: str) -> HeaderField | None:
    """The first field called ``name`` (lower case); later duplicates are ignored."""
    for item in fields:
        if item.name.lower() == name:
            return item
    return None


def first_value(fields: list[HeaderField], name: str) -> bytes | None:
    """The unfolded value of :func:`first_field`, or None when absent."""
    item = first_field(fields, name)
    return None if item is None else item.value


# --- RFC 2047

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=)[ \t\r\n]+(?==\?)")


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset; unknown or lying charsets fall back."""
    name = (charset or "").strip().lower().split("*", 1)[0]  # RFC 2231 language suffix
    if name and name not in ("us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        try:
            if "".encode(name) == b"":  # refuses bytes-to-bytes codecs like "base64"
                return data.decode(name, "replace")
        except (LookupError, ValueError, TypeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.group(1), match.group(2).upper(), match.group(3)
    data = text.encode("latin-1", "replace")
    try:
        if encoding == "B":
            payload = base64.b64decode(data + b"=" * (-len(data) % 4))
        else:
            payload = binascii.a2b_qp(data.replace(b"_", b" "))
    except (binascii.Error, ValueError):
        return match.group(0)
    return decode_text(payload, charset)


def decode_header_text(value: bytes) -> str:
    """Unfolded header text, RFC 2047 encoded-words decoded, 8-bit read as UTF-8."""
    text = decode_text(FOLD.sub(b"", value), None)
    # RFC 2047 §6.2: white space between adjacent encoded-words is dropped
    text = _BETWEEN_WORDS.sub(r"\1", text)
    return _ENCODED_WORD.sub(_decode_word, text)


# --- parameters


def _split_params(text: str) -> list[str]:
    """Split a structured field at top-level ``;``, drop comments (RFC 2045 §5.1)."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    depth = 0
    escape = False
    for char in text:
        if escape:
            current.append(char)
            escape = False
        elif char == "\\" and (quoted or depth):
            escape = True
            if quoted:
                current.append(char)
        elif quoted:
            current.append(char)
            if char == '"':
                quoted = False
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
        elif char == "(":
            depth = 1
        elif char == '"':
            quoted = True
            current.append(char)
        elif char == ";":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_structured(value: bytes | None) -> tuple[str, list[tuple[str, str]]]:
    """``token; a=b; c="d"`` → (token, [(a, b), (c, d)]); text is latin-1 (lossless)."""
    if value is None:
        return "", []
    items = _split_params(value.decode("latin-1"))
    params: list[tuple[str, str]] = []
    for item in items[1:]:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if sep and name and " " not in name:
            params.append((name, _unquote(raw)))
    return items[0].strip(), params
