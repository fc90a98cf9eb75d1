"""Where the addresses of a downloaded message come from (seed-3 §5.1, §5.4).

Pure: the header block in, candidate recipient addresses per header source out.
The collector then keeps the ones in its Accepted Domains and resolves them
through the mappings (seed-3 §5.5).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from enum import Enum
from typing import Any

from vpop3d.core.message import header_values

__all__ = [
    "DEFAULT_ORDER",
    "RoutingOptions",
    "Slot",
    "drop_mbox_from",
    "received_for",
    "special_addresses",
    "standard_addresses",
]


class Slot(Enum):
    """A "Header Processing Order" slot (seed-3 §5.4)."""

    SPECIAL = "special"
    STANDARD = "standard"
    RECEIVED = "received"
    STOP_IF_FOUND = "stop-if-found"
    STOP = "stop"


DEFAULT_ORDER = (
    Slot.SPECIAL,
    Slot.STOP_IF_FOUND,
    Slot.STANDARD,
    Slot.STOP_IF_FOUND,
    Slot.RECEIVED,
)


@dataclass(frozen=True, slots=True)
class RoutingOptions:
    """Configure Routing Options, with the spec's defaults (seed-3 §5.4)."""

    special: tuple[str, ...] = ()
    read_special: str = "forwards"  # forwards | reversed | all
    read_received: str = "reversed"
    ignore_resent: bool = True
    received_need_at: bool = True
    standard_need_at: bool = True
    disable_implied: bool = False
    ignore_from_line: bool = True
    order: tuple[Slot, ...] = field(default=DEFAULT_ORDER)

    @classmethod
    def from_json(cls, text: str) -> RoutingOptions:
        try:
            raw: Any = json.loads(text or "{}")
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        base = cls()
        special = raw.get("special", base.special)
        if isinstance(special, str):
            special = [line for line in special.splitlines() if line.strip()]
        order = tuple(Slot(item) for item in raw.get("order", [s.value for s in base.order]))
        return cls(
            special=tuple(str(item) for item in special),
            read_special=str(raw.get("read_special", base.read_special)),
            read_received=str(raw.get("read_received", base.read_received)),
            ignore_resent=bool(raw.get("ignore_resent", base.ignore_resent)),
            received_need_at=bool(raw.get("received_need_at", base.received_need_at)),
            standard_need_at=bool(raw.get("standard_need_at", base.standard_need_at)),
            disable_implied=bool(raw.get("disable_implied", base.disable_implied)),
            ignore_from_line=bool(raw.get("ignore_from_line", base.ignore_from_line)),
            order=order or DEFAULT_ORDER,
        )


def drop_mbox_from(first_line: bytes) -> bool:
    """Is this the bogus leading ``From sender date`` line some ISPs add (seed-3 §5.4)?"""
    if not first_line.startswith(b"From "):
        return False
    head = first_line.split(b" ", 1)[0]
    return b":" not in head


def _read(values: list[str], mode: str) -> list[list[str]]:
    """Group per field in read order; the caller takes the first group that matches
    (forwards/reversed) or all of them."""
    ordered = list(reversed(values)) if mode == "reversed" else list(values)
    return [[value] for value in ordered]


def standard_addresses(headers: list[tuple[str, str]], opts: RoutingOptions) -> list[str]:
    """To, Cc, Apparently-To (and Resent-To/Cc unless ignored), RFC 5322 address lists."""
    names = ["to", "cc", "apparently-to"]
    if not opts.ignore_resent:
        names += ["resent-to", "resent-cc"]
    values = [value for name, value in headers if name.casefold() in names]
    out: list[str] = []
    for _display, address in getaddresses(values):
        address = address.strip()
        if not address or (opts.standard_need_at and "@" not in address):
            continue
        out.append(address)
    return out


_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+)>?", re.IGNORECASE)


def received_for(headers: list[tuple[str, str]], opts: RoutingOptions) -> list[list[str]]:
    """The ``for`` clause of each Received field, in the configured read order."""
    groups: list[list[str]] = []
    for (value,) in _read(header_values(headers, "received"), opts.read_received):
        match = _FOR.search(value)
        if match is None:
            continue
        address = match.group(1)
        if opts.received_need_at and "@" not in address:
            continue
        groups.append([address])
    return groups


def _pattern_addresses(pattern: str, value: str) -> list[str]:
    """One Special Header Fields pattern applied to one field value (seed-3 §5.4)."""
    spec = pattern.strip()
    if spec.startswith("/"):
        end = spec.rfind("/")
        if end <= 0:
            return []
        body, flags = spec[1:end], spec[end + 1 :]
        re_flags = re.IGNORECASE if "i" in flags else 0
        try:
            compiled = re.compile(body, re_flags)
        except re.error:
            return []
        matches = compiled.finditer(value) if "g" in flags else [compiled.search(value)]
        out: list[str] = []
        for match in matches:
            if match is None:
                continue
            groups = [g for g in match.groups() if g] or [match.group(0)]
            out.extend(group.strip() for group in groups)
        return out
    if "*" not in spec:
        return [value.strip().strip("<>")] if value.strip() else []
    prefix, _star, suffix = spec.partition("*")
    prefix, suffix = prefix.strip(), suffix.strip()
    text = value.strip()
    if not text.startswith(prefix):
        return []
    rest = text[len(prefix) :].strip()
    if suffix == "~":
        return rest.split()[:1]
    if suffix:
        if not rest.endswith(suffix):
            return []
        rest = rest[: -len(suffix)].strip()
    return [rest.strip("<>")] if rest else []


def special_addresses(headers: list[tuple[str, str]], opts: RoutingOptions) -> list[list[str]]:
    """Addresses from the Special Header Fields patterns, grouped per header field."""
    groups: list[list[str]] = []
    for line in opts.special:
        name, _colon, pattern = line.partition(":")
        name = name.strip()
        if not name:
            continue
        for (value,) in _read(header_values(headers, name), opts.read_special):
            found = _pattern_addresses(pattern, value) if pattern.strip() else [value.strip()]
            found = [addr.strip("<>") for addr in found if "@" in addr]
            if found:
                groups.append(found)
    return groups
