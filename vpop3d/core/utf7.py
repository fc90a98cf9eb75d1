"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3).

Printable US-ASCII except ``&`` stands for itself, ``&`` is ``&-``, and any other
run of characters is UTF-16BE in modified base64 (``,`` for ``/``, no padding)
between ``&`` and ``-``. ``decode`` is strict so that one name has exactly one wire
form: the server can refuse a malformed CREATE/RENAME instead of storing something
clients would show oddly.
"""

from __future__ import annotations

import binascii

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _printable(code: int) -> bool:
    return 0x20 <= code <= 0x7E


def _b64encode(data: bytes) -> str:
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return text.rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Encode a Unicode mailbox name for the wire."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be", "surrogatepass")
            out.append("&" + _b64encode(data) + "-")
            pending.clear()

    for char in name:
        code = ord(char)
        if _printable(code):
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _decode_run(run: str) -> str:
    """Decode the base64 between ``&`` and ``-``; ValueError if not canonical."""
    raw = run.encode("ascii")
    if any(byte not in _B64 for byte in raw):
        raise ValueError(f"bad modified base64 {run!r}")
    if len(raw) % 4 == 1:
        raise ValueError(f"truncated modified base64 {run!r}")
    padded = raw.replace(b",", b"/") + b"=" * (-len(raw) % 4)
    data = binascii.a2b_base64(padded)
    if len(data) % 2:
        raise ValueError(f"odd UTF-16 length in {run!r}")
    if _b64encode(data).encode("ascii") != raw:
        # non-zero padding bits: RFC 3501 §5.1.3 wants the shortest, canonical form
        raise ValueError(f"non-canonical modified base64 {run!r}")
    try:
        text = data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise ValueError(f"bad UTF-16 in {run!r}") from exc
    if any(_printable(ord(char)) for char in text):
        raise ValueError(f"printable US-ASCII must not be encoded: {run!r}")
    return text


def decode(wire: str) -> str:
    """Decode a wire mailbox name; raise ``ValueError`` when it is malformed."""
    out: list[str] = []
    index = 0
    last_run_end = -1
    while index < len(wire):
        char = wire[index]
        if char != "&":
            if not _printable(ord(char)):
                raise ValueError(f"character {char!r} must be encoded")
            out.append(char)
            index += 1
            continue
        end = wire.find("-", index + 1)
        if end < 0:
            raise ValueError("unterminated '&' shift")
        run = wire[index + 1 : end]
        if not run:
            out.append("&")
        else:
            if last_run_end == index:
                # RFC 3501 §5.1.3: no adjacent encoded runs ("&AGE-&AGE-")
                raise ValueError("adjacent encoded runs")
            out.append(_decode_run(run))
            last_run_end = end + 1
        index = end + 1
    return "".join(out)
