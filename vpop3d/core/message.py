"""Trace headers and a light header scan of a stored message.

* ``Received:`` (RFC 5321 §4.4) with the ``with`` protocol from RFC 3848 / RFC 6531
  §3.7.3 (ESMTP, ESMTPA, ESMTPS, ESMTPSA, UTF8SMTP...) and the ``tls`` clause of
  RFC 8314 §7.4 carrying the TLS cipher suite; the date is RFC 5322 §3.3.
* ``Return-Path:`` (RFC 5321 §4.4) records the envelope sender at final delivery.
* :func:`scan_headers` reads the header block of raw bytes without a MIME parse,
  enough for routing and rules that look at a few fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

__all__ = [
    "TraceInfo",
    "date_header",
    "header_end",
    "header_values",
    "original_recipient_headers",
    "received_header",
    "return_path_header",
    "scan_headers",
    "with_protocol",
]

_CIPHER = re.compile(r"TLS_[A-Z0-9_]+")
_SAFE_COMMENT = re.compile(r"[^\x21-\x27\x2a-\x5b\x5d-\x7e ]")


def with_protocol(
    *, esmtp: bool = True, tls: bool = False, auth: bool = False, utf8: bool = False
) -> str:
    """The Received ``with`` keyword (RFC 3848 §2, RFC 6531 §3.7.3)."""
    if utf8:
        base = "UTF8SMTP"
    elif esmtp or tls or auth:
        base = "ESMTP"
    else:
        return "SMTP"
    suffix = ("S" if tls else "") + ("A" if auth else "")
    return base + suffix


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """Facts for one Received line."""

    helo: str  # what the client said in HELO/EHLO
    peer_ip: str
    by_host: str  # our host name
    when: datetime  # timezone-aware
    queue_id: str = ""
    peer_rdns: str = ""  # verified reverse DNS, if any
    esmtp: bool = True
    tls_description: str = ""  # e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"
    authenticated: bool = False
    smtputf8: bool = False
    recipient: str = ""  # "for" clause: only for single-recipient messages


def _comment_safe(text: str) -> str:
    """Keep header comments free of parentheses, backslashes and controls."""
    return _SAFE_COMMENT.sub("?", text)


def _address_literal(ip: str) -> str:
    # RFC 5321 §4.1.3: IPv6 literals carry the "IPv6:" tag.
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def received_header(info: TraceInfo) -> bytes:
    """Render a folded ``Received:`` field, CRLF-terminated.

    Clause order is RFC 5321 §4.4 ``Stamp``: from, by, with, id, for, additional
    registered clauses (``tls``), then ``;`` and the date.
    """
    helo = _comment_safe(info.helo.strip()) or "unknown"
    tcp_info = _address_literal(info.peer_ip)
    if info.peer_rdns:
        tcp_info = f"{_comment_safe(info.peer_rdns)} {tcp_info}"
    lines = [f"Received: from {helo} ({tcp_info})", f"\tby {info.by_host}"]
    tls = bool(info.tls_description)
    proto = with_protocol(esmtp=info.esmtp, tls=tls, auth=info.authenticated, utf8=info.smtputf8)
    with_line = f"\twith {proto}"
    if info.queue_id:
        with_line += f" id {info.queue_id}"
    lines.append(with_line)
    if info.recipient:
        lines.append(f"\tfor <{info.recipient}>")
    if tls:
        match = _CIPHER.search(info.tls_description)
        version = _comment_safe(info.tls_description.split()[0])
        if match:
            lines.append(f"\ttls {match.group(0)} ({version})")
        else:
            lines.append(f"\t({_comment_safe(info.tls_description)})")
    lines[-1] += ";"
    lines.append(f"\t{format_datetime(info.when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path_header(sender: str) -> bytes:
    """``Return-Path: <sender>``; ``<>`` for the null reverse-path (RFC 5321 §4.4)."""
    return f"Return-Path: <{sender}>\r\n".encode()


def date_header(when: datetime) -> bytes:
    """``Date:`` in RFC 5322 §3.3 form (added to local submissions that lack one)."""
    return f"Date: {format_datetime(when)}\r\n".encode()


def original_recipient_headers(recipients: list[str]) -> bytes:
    """One ``X-VPOP3-ORIGRCPT: <addr>`` per envelope recipient (manual L6931)."""
    return b"".join(f"X-VPOP3-ORIGRCPT: <{_comment_safe(r)}>\r\n".encode() for r in recipients)


def header_end(data: bytes) -> int | None:
    """Offset of the first body byte (after the blank line), or None if not seen."""
    if data.startswith(b"\r\n"):
        return 2
    index = data.find(b"\r\n\r\n")
    return None if index < 0 else index + 4


def scan_headers(data: bytes, limit: int = 256 * 1024) -> list[tuple[str, str]]:
    """Parse the header block of ``data`` into ``(name, unfolded value)`` pairs.

    Bytes are decoded as UTF-8 with invalid octets replaced, since RFC 5322 headers
    are ASCII and RFC 6532 headers UTF-8. Lines without a colon are skipped.
    Only the first ``limit`` octets are read.
    """
    end = header_end(data[:limit])
    block = data[: end if end is not None else limit]
    text = block.decode("utf-8", "replace")
    out: list[tuple[str, str]] = []
    for line in re.split(r"\r?\n", text):
        if not line:
            break
        if line[0] in " \t":
            if out:
                name, value = out[-1]
                out[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            continue
        out.append((name, value.strip()))
    return out


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    """All values of field ``name`` (caseless), in order."""
    key = name.casefold()
    return [value for field, value in headers if field.casefold() == key]
