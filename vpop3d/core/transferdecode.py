"""Content-Transfer-Encoding removal for IMAP ``BINARY[...]`` (RFC 3516, RFC 9051 §6.4.5).

The server decodes a body part before sending it, so the client gets the original
octets. Identity encodings (7bit, 8bit, binary; RFC 2045 §6.2) pass through; base64
and quoted-printable are decoded leniently the way RFC 2045 §6.7/§6.8 tell decoders
to; anything else is refused, which IMAP reports as ``NO [UNKNOWN-CTE]``.
"""

from __future__ import annotations

import binascii
import re

from vpop3d.core import mime
from vpop3d.core.mimeheader import first_value

IDENTITY = frozenset({"", "7bit", "8bit", "binary"})  # RFC 2045 §6.2; none means 7bit
DECODABLE = frozenset({"base64", "quoted-printable"})
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


class UnknownTransferEncoding(ValueError):
    """The part uses a Content-Transfer-Encoding we cannot undo (RFC 3516 §4)."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"unknown content-transfer-encoding {encoding!r}")
        self.encoding = encoding


def encoding_name(value: bytes | str | None) -> str:
    """The mechanism token of a Content-Transfer-Encoding value, lower case.

    RFC 2045 §6.1: the value is a single token, case-insensitive; a trailing comment
    or parameters some mailers add are ignored.
    """
    if value is None:
        return ""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    token = re.split(r"[\s;(]", text.strip(), maxsplit=1)[0]
    return token.lower()


def decode_base64(body: bytes) -> bytes:
    """RFC 2045 §6.8: characters outside the alphabet are ignored; padding is optional.

    Decoding stops at the first ``=`` (the end of the data) so trailing junk after the
    padding does not shift the output.
    """
    end = body.find(b"=")
    data = _NOT_BASE64.sub(b"", body if end < 0 else body[:end])
    if len(data) % 4 == 1:  # a lone sextet carries no whole octet
        data = data[:-1]
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def decode_quoted_printable(body: bytes) -> bytes:
    """RFC 2045 §6.7: ``=XX`` escapes and ``=`` soft line breaks (CRLF or bare LF)."""
    return binascii.a2b_qp(body)


def decode(body: bytes, encoding: bytes | str | None) -> bytes:
    """``body`` with its transfer encoding removed; raise :class:`UnknownTransferEncoding`."""
    name = encoding_name(encoding)
    if name in IDENTITY:
        return body
    if name == "base64":
        return decode_base64(body)
    if name == "quoted-printable":
        return decode_quoted_printable(body)
    raise UnknownTransferEncoding(name)


def _locate(root: mime.Entity, part: tuple[int, ...]) -> mime.Entity | None:
    """The entity a section-part names (RFC 3501 §6.4.5 part numbering).

    Numbers index the children of a multipart; a message/rfc822 part is stepped into
    first; part 1 of a message that is not multipart is that message's own body.
    """
    node, in_message = root, True
    for number in part:
        if not in_message and node.message is not None:
            node, in_message = node.message, True
        if node.children:
            if not 1 <= number <= len(node.children):
                return None
            node, in_message = node.children[number - 1], False
        elif in_message and number == 1:
            in_message = False
        else:
            return None
    return node


def binary_section(raw: bytes, part: tuple[int, ...]) -> bytes:
    """The octets of ``BINARY[part]``: the part's body, transfer-decoded.

    ``BINARY[]`` is the whole message as stored; a missing part is empty (as for
    ``BODY[]``); multipart and message parts have nothing to decode and are sent as
    stored. Raises :class:`UnknownTransferEncoding`.
    """
    if not part:
        return raw
    node = _locate(mime.parse(raw), part)
    if node is None:
        return b""
    if node.children or node.message is not None:
        return node.body
    return decode(node.body, first_value(node.fields, "content-transfer-encoding"))


def has_nul(data: bytes) -> bool:
    """True when ``data`` must travel as a literal8 (RFC 3516 §4: NUL octets)."""
    return b"\x00" in data
