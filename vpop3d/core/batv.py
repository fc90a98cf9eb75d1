"""BATV ``prvs`` tags on envelope senders (seed-6 §4.2, draft-levine-smtp-batv-01).

``user@example.com`` becomes ``prvs=KDDDSSSSSS=user@example.com``: K the key
number, DDD the expiry day ((days since 1970 + 7) mod 1000), SSSSSS the first six
hex digits of HMAC-SHA1(secret, "KDDD" + the original address in lower case). A
tag is valid until its expiry day (mod-1000 arithmetic, at most 7 days ahead).
"""

from __future__ import annotations

import hashlib
import hmac
import re

_TAG = re.compile(r"^prvs=(\d)(\d{3})([0-9a-f]{6})=(.+)$", re.IGNORECASE)
VALID_DAYS = 7


def _signature(secret: str, key: str, day: str, address: str) -> str:
    mac = hmac.new(secret.encode(), f"{key}{day}{address.lower()}".encode(), hashlib.sha1)
    return mac.hexdigest()[:6]


def sign(address: str, secret: str, now: float, key: int = 0) -> str:
    """Tag ``address``; already tagged or null addresses are returned unchanged."""
    if not address or _TAG.match(address):
        return address
    day = f"{(int(now // 86400) + VALID_DAYS) % 1000:03d}"
    return f"prvs={key}{day}{_signature(secret, str(key), day, address)}={address}"


def verify(address: str, secret: str, now: float) -> str | None:
    """The original address if the tag is genuine and unexpired, else None."""
    match = _TAG.match(address)
    if match is None:
        return None
    key, day, signature, original = match.groups()
    if not hmac.compare_digest(signature.lower(), _signature(secret, key, day, original)):
        return None
    today = int(now // 86400) % 1000
    if (int(day) - today) % 1000 > VALID_DAYS:
        return None
    return original


def strip(address: str) -> str:
    """The address without any prvs tag (no verification)."""
    match = _TAG.match(address)
    return address if match is None else match.group(4)
