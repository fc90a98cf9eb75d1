"""RFC 5321 mailboxes and paths: parse, normalise, render.

A :class:`Mailbox` keeps the local part as the unquoted string the sender meant
(``"a@b"@x`` has local part ``a@b``) and the domain in its canonical ASCII form:
lower case, IDNA A-labels (RFC 5890), or a normalised address literal
(``[192.0.2.1]``, ``[IPv6:2001:db8::1]``). Local parts are case-preserving on the wire
(RFC 5321 §2.4) but compared caselessly here, because VPOP3 user names are
case-insensitive; :attr:`Mailbox.key` is the comparison form.

Every parser raises only :class:`AddressError` on bad input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from encodings import idna

__all__ = [
    "AddressError",
    "Mailbox",
    "Path",
    "normalise_domain",
    "parse_mailbox",
    "parse_path",
]

# RFC 5321 §4.5.3.1.1-3: size limits in octets.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256

# RFC 5321 §4.1.2 atext (RFC 5322 §3.2.3).
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# RFC 5321 §4.1.3 General-address-literal: Standardized-tag ":" 1*dcontent
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")


class AddressError(ValueError):
    """The text is not a valid RFC 5321 mailbox or path."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A parsed ``local-part@domain``."""

    local: str
    domain: str

    @property
    def key(self) -> str:
        """Caseless comparison form, ``local@domain``."""
        return f"{self.local.casefold()}@{self.domain}"

    @property
    def is_literal(self) -> bool:
        """True for address literals such as ``x@[192.0.2.1]`` (RFC 5321 §4.1.3)."""
        return self.domain.startswith("[")

    @property
    def literal_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The IP of an IPv4/IPv6 address literal, else None."""
        if not self.is_literal:
            return None
        inner = self.domain[1:-1]
        if inner.lower().startswith("ipv6:"):
            return ipaddress.IPv6Address(inner[5:])
        if ":" in inner:
            return None
        return ipaddress.IPv4Address(inner)

    @property
    def needs_smtputf8(self) -> bool:
        """True when the local part is not ASCII (RFC 6531 §3.2)."""
        return not self.local.isascii()

    def __str__(self) -> str:
        return f"{quote_local(self.local)}@{self.domain}"


@dataclass(frozen=True, slots=True)
class Path:
    """An RFC 5321 reverse- or forward-path; ``mailbox`` is None for ``<>``.

    ``route`` keeps any source route (``<@a,@b:x@y>``) for logs only: RFC 5321
    Appendix C lets servers ignore it, and we always do, so a route can never be
    used to relay through us.
    """

    mailbox: Mailbox | None
    route: tuple[str, ...] = ()

    @property
    def is_null(self) -> bool:
        return self.mailbox is None

    def __str__(self) -> str:
        return f"<{self.mailbox}>" if self.mailbox else "<>"


def quote_local(local: str) -> str:
    """Render a local part as a Dot-string when possible, else as a Quoted-string."""
    if _is_dot_string(local, allow_utf8=True):
        return local
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _is_dot_string(text: str, *, allow_utf8: bool) -> bool:
    if not text or text.startswith(".") or text.endswith(".") or ".." in text:
        return False
    for ch in text:
        if ch == "." or ch in _ATEXT:
            continue
        if allow_utf8 and ord(ch) > 0x7F:
            continue
        return False
    return True


def _parse_quoted(text: str, *, smtputf8: bool) -> str:
    """Unquote an RFC 5321 §4.1.2 Quoted-string (with the quotes)."""
    out: list[str] = []
    i = 1
    end = len(text) - 1
    while i < end:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= end:
                raise AddressError("dangling backslash in quoted local part")
            nxt = text[i + 1]
            if not (32 <= ord(nxt) <= 126):
                raise AddressError("bad quoted-pair")
            out.append(nxt)
            i += 2
            continue
        code = ord(ch)
        if code == 34:
            raise AddressError("unescaped quote in quoted local part")
        if not (32 <= code <= 126) and not (smtputf8 and code > 0x7F):
            raise AddressError("bad character in quoted local part")
        out.append(ch)
        i += 1
    return "".join(out)


def _split_local(text: str) -> tuple[str, str]:
    """Split ``local@domain`` at the ``@`` that ends the local part."""
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                break
            i += 1
        else:
            raise AddressError("unterminated quoted local part")
        if i + 1 >= len(text) or text[i + 1] != "@":
            raise AddressError("missing @ after quoted local part")
        return text[: i + 1], text[i + 2 :]
    at = text.rfind("@")
    if at < 0:
        raise AddressError("missing @")
    return text[:at], text[at + 1 :]


def normalise_domain(text: str, *, smtputf8: bool = True) -> str:
    """Canonical form of a domain or address literal; raise AddressError if invalid."""
    if not text:
        raise AddressError("empty domain")
    if text.startswith("["):
        return _normalise_literal(text)
    if not text.isascii() and not smtputf8:
        raise AddressError("non-ASCII domain needs SMTPUTF8")
    labels = text.split(".")
    out: list[str] = []
    for label in labels:
        if not label:
            raise AddressError("empty domain label")
        if label.isascii():
            ascii_label = label.lower()
        else:
            try:
                # IDNA 2003 ToASCII from the stdlib (RFC 3490): nameprep + punycode.
                ascii_label = idna.ToASCII(label).decode("ascii").lower()
            except UnicodeError as exc:
                raise AddressError(f"bad internationalised label: {exc}") from None
        if not _LDH.fullmatch(ascii_label):
            raise AddressError(f"bad domain label {label!r}")
        out.append(ascii_label)
    domain = ".".join(out)
    if len(domain) > MAX_DOMAIN:
        raise AddressError("domain too long")
    return domain


def _normalise_literal(text: str) -> str:
    if not text.endswith("]") or len(text) < 3:
        raise AddressError("bad address literal")
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        try:
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        except ValueError:
            raise AddressError("bad IPv6 address literal") from None
    if ":" in inner:
        if not _GENERAL_LITERAL.fullmatch(inner):
            raise AddressError("bad general address literal")
        return f"[{inner}]"
    try:
        return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError:
        raise AddressError("bad IPv4 address literal") from None


def parse_mailbox(text: str, *, smtputf8: bool = False) -> Mailbox:
    """Parse an RFC 5321 ``Mailbox`` (no angle brackets); RFC 6531 when ``smtputf8``."""
    if not isinstance(text, str):
        raise AddressError("not text")
    local_text, domain_text = _split_local(text)
    if local_text.startswith('"') and len(local_text) >= 2 and local_text.endswith('"'):
        local = _parse_quoted(local_text, smtputf8=smtputf8)
    elif _is_dot_string(local_text, allow_utf8=smtputf8):
        local = local_text
    else:
        raise AddressError("bad local part")
    if len(local_text.encode("utf-8", "surrogatepass")) > MAX_LOCAL_PART:
        raise AddressError("local part too long")
    domain = normalise_domain(domain_text, smtputf8=smtputf8)
    return Mailbox(local, domain)


def parse_path(text: str, *, smtputf8: bool = False, postmaster_domain: str | None = None) -> Path:
    """Parse ``<...>`` as in MAIL FROM / RCPT TO (RFC 5321 §4.1.2).

    ``<>`` gives a null path. A source route is parsed and then ignored.
    ``<Postmaster>`` (RFC 5321 §4.5.1) becomes ``postmaster@postmaster_domain`` when
    a domain is given; without one it is an error.
    """
    if not isinstance(text, str):
        raise AddressError("not text")
    if len(text) < 2 or text[0] != "<" or text[-1] != ">":
        raise AddressError("path must be enclosed in <>")
    inner = text[1:-1]
    if len(inner.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise AddressError("path too long")
    if not inner:
        return Path(None)
    route: tuple[str, ...] = ()
    if inner.startswith("@"):
        colon = inner.find(":")
        if colon < 0:
            raise AddressError("source route without ':'")
        hops = inner[:colon].split(",")
        for hop in hops:
            if not hop.startswith("@"):
                raise AddressError("bad source route")
            normalise_domain(hop[1:], smtputf8=smtputf8)
        route = tuple(hop[1:] for hop in hops)
        inner = inner[colon + 1 :]
    if inner.casefold() == "postmaster" and not route:
        if postmaster_domain is None:
            raise AddressError("<Postmaster> needs a domain here")
        return Path(Mailbox("postmaster", normalise_domain(postmaster_domain)))
    return Path(parse_mailbox(inner, smtputf8=smtputf8), route)
