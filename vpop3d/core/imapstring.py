"""IMAP strings: wire syntax (RFC 3501 §4.3) and the i;ascii-casemap comparator."""

from __future__ import annotations


def imap_nstring(value: bytes | None) -> bytes:
    """An IMAP nstring: NIL, a quoted string, or a literal when quoting cannot carry it.

    RFC 3501 §4.3: quoted strings hold 7-bit TEXT-CHARs only, so CR, LF and 8-bit bytes
    go as a literal. NUL is never allowed on the wire, so it is dropped.
    """
    if value is None:
        return b"NIL"
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")
    if value.isascii() and b"\r" not in value and b"\n" not in value:
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(value) + value


def ascii_casemap(text: str) -> str:
    """i;ascii-casemap (RFC 4790 §9.2): fold A-Z only."""
    return text.translate(_ASCII_UPPER)


_ASCII_UPPER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
