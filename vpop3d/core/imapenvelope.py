"""RFC 5322 address lists as IMAP address structures, and the ENVELOPE (RFC 3501 §7.4.2).

Display names and mailboxes stay the stored bytes (encoded-words included), as RFC 3501
asks; 8-bit bytes then travel as literals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from vpop3d.core.imapstring import ascii_casemap, imap_nstring
from vpop3d.core.mimeheader import HeaderField, decode_header_text, decode_text, first_value

# Never NIL: a NIL host marks a group (RFC 3501 §7.4.2).
MISSING_HOST = b".MISSING-HOST-NAME."


@dataclass(frozen=True, slots=True)
class Address:
    """One RFC 3501 address structure; ``host`` None marks group start/end."""

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None

    def wire(self) -> bytes:
        """``(name adl mailbox host)`` as sent in ENVELOPE."""
        return b"(%s %s %s %s)" % (
            imap_nstring(self.name),
            imap_nstring(self.adl),
            imap_nstring(self.mailbox),
            imap_nstring(self.host),
        )


_ADDR_SPECIALS = b'()<>[]:;@\\,"'


def _tokens(value: bytes) -> Iterator[tuple[str, bytes]]:
    """RFC 5322 lexical tokens: (kind, text); kinds q(uoted) c(omment) d(omain-literal)
    a(tom, dots included) s(pecial)."""
    index = 0
    size = len(value)
    while index < size:
        char = value[index : index + 1]
        if char in (b" ", b"\t", b"\r", b"\n"):
            index += 1
        elif char == b'"':
            out = bytearray()
            index += 1
            while index < size and value[index : index + 1] != b'"':
                if value[index : index + 1] == b"\\" and index + 1 < size:
                    index += 1
                out += value[index : index + 1]
                index += 1
            index += 1
            yield "q", bytes(out)
        elif char == b"(":
            out = bytearray()
            depth = 1
            index += 1
            while index < size and depth:
                current = value[index : index + 1]
                if current == b"\\" and index + 1 < size:
                    index += 1
                    current = value[index : index + 1]
                elif current == b"(":
                    depth += 1
                elif current == b")":
                    depth -= 1
                if depth:
                    out += current
                index += 1
            yield "c", bytes(out)
        elif char == b"[":
            end = value.find(b"]", index)
            end = size if end < 0 else end + 1
            yield "d", value[index:end]
            index = end
        elif char in (b"<", b">", b":", b";", b"@", b",", b")", b"]", b"\\"):
            yield "s", char
            index += 1
        else:
            start = index
            while index < size and value[index] not in _ADDR_SPECIALS + b" \t\r\n":
                index += 1
            yield "a", value[start:index]


def _phrase(tokens: list[tuple[str, bytes]]) -> bytes | None:
    words = [text for kind, text in tokens if kind in ("a", "q")]
    return b" ".join(words) if words else None


def _mailbox(tokens: list[tuple[str, bytes]]) -> Address | None:
    comments = [text for kind, text in tokens if kind == "c"]
    tokens = [item for item in tokens if item[0] != "c"]
    if not tokens:
        return None
    name: bytes | None
    adl: bytes | None = None
    if ("s", b"<") in tokens:
        opening = tokens.index(("s", b"<"))
        name = _phrase(tokens[:opening])
        inner = tokens[opening + 1 :]
        if ("s", b">") in inner:
            inner = inner[: inner.index(("s", b">"))]
        if inner and inner[0] == ("s", b"@") and ("s", b":") in inner:
            colon = inner.index(("s", b":"))
            adl = b"".join(text for _, text in inner[:colon]) or None
            inner = inner[colon + 1 :]
        spec = inner
    else:
        name = None
        spec = tokens
    if name is None and comments:
        name = comments[-1].strip() or None
    if ("s", b"@") in spec:
        at = len(spec) - 1 - spec[::-1].index(("s", b"@"))
        local = b"".join(text for _, text in spec[:at])
        host = b"".join(text for _, text in spec[at + 1 :]) or MISSING_HOST
    else:
        local = b"".join(text for kind, text in spec if kind != "s")
        host = MISSING_HOST
    if not local and name is None:
        return None
    return Address(name, adl, local, host if local else b"")


def parse_addresses(value: bytes | None) -> list[Address]:
    """Address list → address structures; groups as RFC 3501 §7.4.2 markers."""
    if not value:
        return []
    out: list[Address] = []
    current: list[tuple[str, bytes]] = []
    in_group = False
    in_angle = False

    def flush() -> None:
        address = _mailbox(current)
        if address is not None:
            out.append(address)
        current.clear()

    for token in _tokens(value):
        if token == ("s", b"<"):
            in_angle = True
        elif token == ("s", b">"):
            in_angle = False
        if in_angle:
            current.append(token)
        elif token == ("s", b":") and not in_group and ("s", b"@") not in current:
            out.append(Address(None, None, _phrase(current) or b"", None))
            current.clear()
            in_group = True
        elif token == ("s", b","):
            flush()
        elif token == ("s", b";") and in_group:
            flush()
            out.append(Address(None, None, None, None))
            in_group = False
        else:
            current.append(token)
    flush()
    if in_group:
        out.append(Address(None, None, None, None))
    return out


def _address_list_wire(addresses: list[Address]) -> bytes:
    if not addresses:
        return b"NIL"
    return b"(" + b"".join(item.wire() for item in addresses) + b")"


def first_mailbox(addresses: list[Address]) -> Address | None:
    """The first real mailbox, skipping group markers."""
    return next((item for item in addresses if item.host is not None), None)


# --- envelope


def envelope(fields: list[HeaderField]) -> bytes:
    """RFC 3501 §7.4.2 ENVELOPE; Sender and Reply-To default to From."""
    from_ = parse_addresses(first_value(fields, "from"))
    sender = parse_addresses(first_value(fields, "sender")) or from_
    reply_to = parse_addresses(first_value(fields, "reply-to")) or from_
    items = [
        imap_nstring(first_value(fields, "date")),
        imap_nstring(first_value(fields, "subject")),
        _address_list_wire(from_),
        _address_list_wire(sender),
        _address_list_wire(reply_to),
        _address_list_wire(parse_addresses(first_value(fields, "to"))),
        _address_list_wire(parse_addresses(first_value(fields, "cc"))),
        _address_list_wire(parse_addresses(first_value(fields, "bcc"))),
        imap_nstring(first_value(fields, "in-reply-to")),
        imap_nstring(first_value(fields, "message-id")),
    ]
    return b"(" + b" ".join(items) + b")"


# --- SORT fields (RFC 5256 §3, RFC 5957 §3)


def display_name(addresses: list[Address]) -> str:
    """RFC 5957 §3: display-name of the first address, else its addr-spec."""
    first = first_mailbox(addresses)
    if first is None:
        return ""
    if first.name:
        name = decode_header_text(first.name).strip()
        if name:
            return name
    return decode_text((first.mailbox or b"") + b"@" + (first.host or b""), None)


def sort_mailbox(addresses: list[Address]) -> str:
    """RFC 5256 §3: addr-mailbox of the first address, i;ascii-casemap folded."""
    first = first_mailbox(addresses)
    if first is None or first.mailbox is None:
        return ""
    return ascii_casemap(decode_text(first.mailbox, None))
