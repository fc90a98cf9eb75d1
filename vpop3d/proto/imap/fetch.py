"""Rendering of FETCH responses (RFC 3501 §7.4.2) from message metadata and bodies.

MIME work (ENVELOPE, BODYSTRUCTURE, sections) is done by ``vpop3d.core.mime``; a
summary cached by the store is used when present, so a header-only FETCH does not
re-parse the message. ``BINARY[...]`` (RFC 3516) is decoded by
``vpop3d.core.transferdecode`` and sent as a literal8 when it holds NUL octets.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence

from vpop3d.core import mime, transferdecode
from vpop3d.proto.imap.grammar import FetchItem, Section, format_date_time
from vpop3d.proto.imap.mailbox import SYSTEM_FLAGS, MailboxError, MessageData


class Need(enum.IntEnum):
    """How much of a message the requested items need from the store."""

    FLAGS = 0  # FLAGS and UID only: the session's own view suffices
    META = 1  # INTERNALDATE, RFC822.SIZE
    SUMMARY = 2  # ENVELOPE, BODYSTRUCTURE, BODY: the cached summary, else the body
    BODY = 3  # anything that looks inside the message


_META_ITEMS = frozenset({"INTERNALDATE", "RFC822.SIZE"})
_SUMMARY_ITEMS = frozenset({"ENVELOPE", "BODYSTRUCTURE", "BODY"})
_SEEN_ITEMS = frozenset({"RFC822", "RFC822.TEXT"})


def need_of(items: Sequence[FetchItem]) -> Need:
    """The largest need among ``items``."""
    need = Need.FLAGS
    for item in items:
        if item.name in ("FLAGS", "UID", "MODSEQ"):
            continue
        if item.name in _META_ITEMS:
            need = max(need, Need.META)
        elif item.name in _SUMMARY_ITEMS and item.section is None:
            need = max(need, Need.SUMMARY)
        else:
            return Need.BODY
    return need


def sets_seen(items: Sequence[FetchItem]) -> bool:
    """True when fetching ``items`` implicitly sets \\Seen (RFC 3501 §6.4.5)."""
    return any(
        item.name in _SEEN_ITEMS or (item.section is not None and not item.section.peek)
        for item in items
    )


def format_flags(flags: Iterable[str], recent: bool = False) -> bytes:
    """``(\\Seen $Label1)``: system flags first in a fixed order, then keywords."""
    return _format_flag_set(frozenset(flags), recent)


@functools.lru_cache(maxsize=4096)
def _format_flag_set(present: frozenset[str], recent: bool) -> bytes:
    # Few distinct flag sets per folder: FETCH 1:* FLAGS renders each once.
    ordered = [f for f in SYSTEM_FLAGS if f in present]
    ordered += sorted(f for f in present if not f.startswith("\\"))
    if recent:
        ordered.append("\\Recent")
    return b"(" + " ".join(ordered).encode("utf-8") + b")"


def _section_bytes(raw: bytes, section: Section) -> bytes:
    spec = mime.SectionSpec(section.part, section.text or None, section.fields)
    data = mime.section(raw, spec)
    if section.partial is not None:
        origin, count = section.partial
        data = mime.partial(data, origin, count)
    return data


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def _binary(raw: bytes, name: str, section: Section) -> bytes:
    """``BINARY[part]<origin>`` or ``BINARY.SIZE[part]`` (RFC 3516 §4)."""
    try:
        data = transferdecode.binary_section(raw, section.part)
    except transferdecode.UnknownTransferEncoding:
        # RFC 3516 §4: the whole command fails with this response code.
        raise MailboxError("Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from None
    label = name.encode() + b"[" + ".".join(map(str, section.part)).encode() + b"]"
    if name == "BINARY.SIZE":
        return label + b" %d" % len(data)
    if section.partial is not None:
        origin, count = section.partial
        data = mime.partial(data, origin, count)
        label += b"<%d>" % origin
    if transferdecode.has_nul(data):
        return label + b" ~{%d}\r\n" % len(data) + data  # literal8 (RFC 3516 §4)
    return label + b" " + _literal(data)


def render(
    msn: int,
    uid: int,
    flags: Iterable[str],
    recent: bool,
    items: Sequence[FetchItem],
    data: MessageData | None,
    modseq: int = 0,
) -> bytes:
    """One ``* msn FETCH (...)`` response line (with CRLF); ``data`` per :func:`need_of`."""
    parts: list[bytes] = []
    summary = None
    for item in items:
        name = item.name
        if name == "UID":
            parts.append(b"UID %d" % uid)
        elif name == "FLAGS":
            parts.append(b"FLAGS " + format_flags(flags, recent))
        elif name == "MODSEQ":  # RFC 7162 §3.1.4
            parts.append(b"MODSEQ (%d)" % modseq)
        elif data is None:
            raise ValueError(f"{name} needs message data")
        elif name == "INTERNALDATE":
            parts.append(b'INTERNALDATE "%s"' % format_date_time(data.internal_date).encode())
        elif name == "RFC822.SIZE":
            parts.append(b"RFC822.SIZE %d" % data.size)
        else:
            raw = data.raw or b""
            if name in ("ENVELOPE", "BODYSTRUCTURE", "BODY") and item.section is None:
                if summary is None:
                    if data.summary is None and data.raw is None:
                        raise ValueError(f"{name} needs the summary or the message")
                    summary = data.summary or mime.analyse(raw)
                value = {
                    "ENVELOPE": summary.envelope,
                    "BODYSTRUCTURE": summary.bodystructure,
                    "BODY": summary.body,
                }[name]
                parts.append(name.encode() + b" " + value)
            elif name == "RFC822":
                parts.append(b"RFC822 " + _literal(raw))
            elif name == "RFC822.HEADER":
                body = _section_bytes(raw, Section(text="HEADER"))
                parts.append(b"RFC822.HEADER " + _literal(body))
            elif name == "RFC822.TEXT":
                body = _section_bytes(raw, Section(text="TEXT"))
                parts.append(b"RFC822.TEXT " + _literal(body))
            elif name in ("BINARY", "BINARY.SIZE") and item.section is not None:
                parts.append(_binary(raw, name, item.section))
            elif item.section is not None:
                section = item.section
                label = b"BODY[" + section.spec().encode("utf-8") + b"]"
                if section.partial is not None:
                    label += b"<%d>" % section.partial[0]
                parts.append(label + b" " + _literal(_section_bytes(raw, section)))
            else:  # pragma: no cover - the grammar admits no other names
                raise ValueError(f"unknown fetch item {name}")
    return b"* %d FETCH (" % msn + b" ".join(parts) + b")\r\n"


def with_implicit(
    items: Sequence[FetchItem], uid_command: bool, seen_set: bool, modseq: bool = False
) -> list[FetchItem]:
    """Add UID for UID FETCH (RFC 3501 §6.4.8), FLAGS when \\Seen was just set, and
    MODSEQ when CHANGEDSINCE asked for it (RFC 7162 §3.1.4.1)."""
    out = list(items)
    names = {item.name for item in out}
    if uid_command and "UID" not in names:
        out.insert(0, FetchItem("UID"))
    if seen_set and "FLAGS" not in names:
        out.append(FetchItem("FLAGS"))
    if modseq and "MODSEQ" not in names:
        out.append(FetchItem("MODSEQ"))
    return out
