"""The fixed message corpus every server gets: same seed, same bytes, every run.

Kinds: plain text, multipart/alternative, a base64 attachment, and non-ASCII headers
(RFC 2047 encoded words and raw UTF-8, RFC 6532), sizes from 2 KB to 1 MB.
"""

from __future__ import annotations

import base64
import random
from email.header import Header

SEED = 20261124
KINDS = ("plain", "multipart", "attachment", "nonascii")
# One mailbox: 20 messages, 2 KB .. 1 MB (about 2.2 MB in all).
MAILBOX_SIZES = (
    2_048, 3_000, 5_000, 8_000, 10_240, 15_000, 20_000, 30_000, 50_000, 80_000,
    100_000, 150_000, 200_000, 2_500, 4_000, 6_000, 12_000, 25_000, 500_000, 1_048_576,
)  # fmt: skip


def _filler(rng: random.Random, octets: int) -> bytes:
    words = ("mail", "server", "bench", "queue", "folder", "message", "quota", "relay")
    lines: list[bytes] = []
    total = 0
    while total < octets:
        line = " ".join(rng.choice(words) for _ in range(10)).encode() + b"\r\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:octets]


def _b64(rng: random.Random, octets: int) -> bytes:
    raw = rng.randbytes(max(1, octets * 3 // 4))
    text = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return text[:octets]


def message(kind: str, size: int, number: int, to: str = "user@example.test") -> bytes:
    """One message of about ``size`` octets; deterministic in (kind, size, number)."""
    rng = random.Random(f"{SEED}:{kind}:{size}:{number}")
    subject = f"bench {kind} {number}"
    sender = "Bench Sender <bench@remote.test>"
    if kind == "nonascii":
        subject = Header(f"Grüße, ünïcödé {number} — 日本語", "utf-8").encode()
        sender = "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@remote.test>"
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{kind}.{size}.{number}@remote.test>\r\nMIME-Version: 1.0\r\n"
    ).encode()
    if kind == "nonascii":
        head += "X-Comment: Ça va très bien, naïve café\r\n".encode()  # RFC 6532 raw UTF-8
    room = max(64, size - len(head) - 400)
    if kind in ("plain", "nonascii"):
        head += b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        return head + _filler(rng, size - len(head))
    boundary = f"=_bench_{number}".encode()
    if kind == "multipart":
        half = room // 2
        parts = [
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + _filler(rng, half),
            b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>" + _filler(rng, half - 8) + b"</p>",
        ]
        kind_header = b"multipart/alternative"
    else:
        text = 512 if room > 1024 else room // 2
        parts = [
            b"Content-Type: text/plain\r\n\r\n" + _filler(rng, text),
            b"Content-Type: application/octet-stream; name=data.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=data.bin\r\n\r\n" + _b64(rng, room - text),
        ]
        kind_header = b"multipart/mixed"
    head += b"Content-Type: " + kind_header + b'; boundary="' + boundary + b'"\r\n\r\n'
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return head + body + b"--" + boundary + b"--\r\n"


def mailbox(to: str = "user@example.test") -> list[bytes]:
    """The 20 messages every POP3/IMAP user starts with (kinds in rotation)."""
    return [message(KINDS[n % 4], size, n, to) for n, size in enumerate(MAILBOX_SIZES)]


def smtp_messages(size: int = 10_240) -> list[bytes]:
    """The SMTP inbound corpus: one message of each kind at ``size`` octets."""
    return [message(kind, size, n) for n, kind in enumerate(KINDS)]


BIG_BODY = message("plain", 2_048, 0)  # the large-folder message (shared by all rows)
