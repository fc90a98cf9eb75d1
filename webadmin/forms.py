"""Reading form fields and query arguments of a twisted.web request."""

from __future__ import annotations

from twisted.web.server import Request


def arg(request: Request, name: str, default: str = "") -> str:
    values = request.args.get(name.encode())
    if not values:
        return default
    return str(values[0].decode("utf-8", "replace"))


def flag(request: Request, name: str) -> bool:
    return arg(request, name) in ("on", "1", "true", "yes")


def int_arg(request: Request, name: str, default: int) -> int:
    text = arg(request, name).strip()
    try:
        return int(text) if text else default
    except ValueError:
        return default
