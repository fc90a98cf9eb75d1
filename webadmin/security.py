"""Defences of the web listener: security headers, login throttling, admin IP rules."""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable

from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

# Scripts and styles come only from /static (no inline code), so a strict CSP fits.
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
    b"content-security-policy": (
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'"
    ),
    b"cache-control": b"no-store",
}
ADMIN_NETWORKS_KEY = "web.admin_allowed_networks"  # list of CIDRs; empty = any address


def secure_headers(request: Request) -> None:
    for name, value in HEADERS.items():
        request.setHeader(name, value)
    if request.isSecure():
        request.setHeader(b"strict-transport-security", b"max-age=31536000")


def peer_ip(request: Request) -> str:
    host = request.getClientAddress()
    return str(getattr(host, "host", "") or "")


def admin_allowed(ip: str, networks: Iterable[str]) -> bool:
    """May ``ip`` use the admin pages? Loopback always may (seed-1 §3 [L465])."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    rules = [n for n in networks if n]
    if not rules:
        return True
    for rule in rules:
        try:
            if address in ipaddress.ip_network(rule, strict=False):
                return True
        except ValueError:
            continue
    return False


class LoginThrottle:
    """Refuse logins from an address after ``limit`` failures within ``window`` seconds."""

    def __init__(self, clock: IReactorTime, limit: int = 10, window: float = 300.0) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock.seconds()
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def failed(self, key: str) -> None:
        if len(self._failures) >= 10_000:  # many addresses: forget the quiet ones
            for old in [k for k in self._failures if not self._recent(k)]:
                del self._failures[old]
        self._recent(key).append(self._clock.seconds())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
