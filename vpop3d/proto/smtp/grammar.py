"""SMTP command grammar: one command line (bytes) in, one frozen command value out.

This is the only SMTP module that decodes wire bytes. It knows RFC 5321 §4.1 syntax,
the ESMTP parameters of RFC 1870 (SIZE), 6152 (BODY), 6531 (SMTPUTF8), 3461 (DSN)
and 4954 (AUTH=), and nothing about state: whether a command is allowed now is the
session's business. Every refusal is one ``SMTPSyntaxError`` carrying its reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vpop3d.core.reply import Reply
from vpop3d.ports import EnvelopeParams, RecipientParams

__all__ = [
    "Auth",
    "Bdat",
    "Command",
    "Data",
    "Ehlo",
    "Etrn",
    "Expn",
    "Helo",
    "Help",
    "MailFrom",
    "Noop",
    "Quit",
    "RcptTo",
    "Rset",
    "SMTPSyntaxError",
    "StartTLS",
    "Unknown",
    "Vrfy",
    "parse_command",
    "parse_path",
]


class SMTPSyntaxError(Exception):
    """A command line the grammar refuses; ``reply`` says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


def _error(code: int, enhanced: str, text: str) -> SMTPSyntaxError:
    return SMTPSyntaxError(Reply(code, enhanced, text))


# ------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class Helo:
    domain: str


@dataclass(frozen=True, slots=True)
class Ehlo:
    domain: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    path: str  # "" for the null reverse-path <>
    params: EnvelopeParams


@dataclass(frozen=True, slots=True)
class RcptTo:
    path: str
    params: RecipientParams


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Bdat:
    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class Expn:
    argument: str


@dataclass(frozen=True, slots=True)
class Help:
    topic: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    mechanism: str  # upper case
    initial: bytes | None  # the initial-response token as sent (base64 or "=")


@dataclass(frozen=True, slots=True)
class Etrn:
    node: str


@dataclass(frozen=True, slots=True)
class Unknown:
    verb: str


Command = (
    Helo
    | Ehlo
    | MailFrom
    | RcptTo
    | Data
    | Bdat
    | Rset
    | Noop
    | Quit
    | Vrfy
    | Expn
    | Help
    | StartTLS
    | Auth
    | Etrn
    | Unknown
)

# ------------------------------------------------------------------ limits

# RFC 5321 §4.5.3.1.4: 512 octets including CRLF for a command line.
COMMAND_LINE_LIMIT = 512
# RFC 3461 §4: MAIL grows by 100 (RET, ENVID), RCPT by 500 (NOTIFY, ORCPT);
# RFC 1870 §3 adds 26 for SIZE; RFC 4954 §5 AUTH= up to 500 more.
MAIL_LINE_LIMIT = COMMAND_LINE_LIMIT + 100 + 26 + 500
RCPT_LINE_LIMIT = COMMAND_LINE_LIMIT + 500
# RFC 4954 §4: AUTH lines (and SASL responses) up to 12288 octets.
AUTH_LINE_LIMIT = 12288
# Largest line the framer accepts at all.
MAX_LINE = AUTH_LINE_LIMIT

LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")

# ------------------------------------------------------------------ paths

# RFC 5322 §3.2.3 atext, plus UTF8-non-ascii under SMTPUTF8 (RFC 6531 §3.3).
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_ATOM_ASCII = re.compile(rf"[{_ATEXT}]+")
_ATOM_UTF8 = re.compile(rf"(?:[{_ATEXT}]|[^\x00-\x7f])+")
_SUBDOMAIN_ASCII = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_LETDIG_UTF8 = r"(?:[A-Za-z0-9]|[^\x00-\x7f])"
_SUBDOMAIN_UTF8 = rf"{_LETDIG_UTF8}(?:(?:-|{_LETDIG_UTF8})*{_LETDIG_UTF8})?"
_DOMAIN_ASCII = re.compile(rf"{_SUBDOMAIN_ASCII}(?:\.{_SUBDOMAIN_ASCII})*")
_DOMAIN_UTF8 = re.compile(rf"{_SUBDOMAIN_UTF8}(?:\.{_SUBDOMAIN_UTF8})*")
# RFC 5321 §4.1.3 address literals.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LITERAL = re.compile(
    rf"\[(?:{_IPV4}|IPv6:[0-9A-Fa-f:.]+|[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+)\]"
)
_QUOTED_ASCII = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_QUOTED_UTF8 = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|[^\x00-\x7f]|\\[\x20-\x7e])*"')

# RFC 5321 §4.5.3.1.1-2: local part 64, domain 255 octets.
_LOCAL_LIMIT = 64
_DOMAIN_LIMIT = 255

BAD_ADDRESS = Reply(501, "5.1.3", "Bad address syntax")


def _is_domain(text: str, utf8: bool) -> bool:
    pattern = _DOMAIN_UTF8 if utf8 else _DOMAIN_ASCII
    return pattern.fullmatch(text) is not None and len(text.encode()) <= _DOMAIN_LIMIT


def _is_local_part(text: str, utf8: bool) -> bool:
    if len(text.encode()) > _LOCAL_LIMIT:
        return False
    if text.startswith('"'):
        quoted = _QUOTED_UTF8 if utf8 else _QUOTED_ASCII
        return quoted.fullmatch(text) is not None
    atom = _ATOM_UTF8 if utf8 else _ATOM_ASCII
    return all(atom.fullmatch(part) for part in text.split("."))


def _split_mailbox(text: str) -> tuple[str, str]:
    """Split at the ``@`` that ends the local part (a quoted part may hold ``@``)."""
    if text.startswith('"'):
        index = 1
        while index < len(text):
            char = text[index]
            if char == "\\":
                index += 2
                continue
            if char == '"':
                break
            index += 1
        at = text.find("@", index)
    else:
        at = text.rfind("@")
    if at <= 0:
        raise _error(*_reply_args(BAD_ADDRESS))
    return text[:at], text[at + 1 :]


def _reply_args(reply: Reply) -> tuple[int, str, str]:
    return reply.code, reply.enhanced, reply.text


def parse_path(text: str, *, utf8: bool, allow_null: bool) -> str:
    """An RFC 5321 §4.1.2 ``<path>`` to ``local@domain`` ("" for ``<>``).

    A source route (``<@relay1,@relay2:user@domain>``) is accepted and dropped, as
    RFC 5321 §4.1.1.3 and Appendix C allow. ``<Postmaster>`` is allowed bare for
    recipients (§4.1.1.3).
    """
    if len(text) < 2 or text[0] != "<" or text[-1] != ">":
        raise _error(*_reply_args(BAD_ADDRESS))
    inner = text[1:-1]
    if inner == "":
        if allow_null:
            return ""
        raise _error(*_reply_args(BAD_ADDRESS))
    if inner.startswith("@"):
        route, colon, rest = inner.partition(":")
        if not colon:
            raise _error(*_reply_args(BAD_ADDRESS))
        for hop in route.split(","):
            if not hop.startswith("@") or not _is_domain(hop[1:], utf8):
                raise _error(*_reply_args(BAD_ADDRESS))
        inner = rest
    if not allow_null and inner.lower() == "postmaster":
        return "Postmaster"
    local, domain = _split_mailbox(inner)
    if not _is_local_part(local, utf8):
        raise _error(*_reply_args(BAD_ADDRESS))
    if domain.startswith("["):
        if _LITERAL.fullmatch(domain) is None:
            raise _error(*_reply_args(BAD_ADDRESS))
    elif not _is_domain(domain, utf8):
        raise _error(*_reply_args(BAD_ADDRESS))
    return f"{local}@{domain}"


# ------------------------------------------------------------------ parameters

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE_ASCII = re.compile(r"[\x21-\x3c\x3e-\x7e]+")
_VALUE_UTF8 = re.compile(r"(?:[\x21-\x3c\x3e-\x7e]|[^\x00-\x7f])+")
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_SIZE_DIGITS = 20  # RFC 1870 §3: size-value = 1*20DIGIT

BAD_PARAMETER = Reply(501, "5.5.4", "Invalid parameters")
UNKNOWN_PARAMETER = Reply(555, "5.5.4", "Unsupported parameter")


def xtext_decode(text: str) -> str:
    """Decode RFC 3461 §4 xtext (``+XX`` hex escapes)."""
    if _XTEXT.fullmatch(text) is None:
        raise _error(501, "5.5.4", "Invalid xtext in parameter")
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _parse_params(words: list[str], utf8: bool) -> dict[str, str | None]:
    value_re = _VALUE_UTF8 if utf8 else _VALUE_ASCII
    params: dict[str, str | None] = {}
    for word in words:
        keyword, eq, value = word.partition("=")
        if _KEYWORD.fullmatch(keyword) is None:
            raise _error(*_reply_args(BAD_PARAMETER))
        if eq and value_re.fullmatch(value) is None:
            raise _error(*_reply_args(BAD_PARAMETER))
        upper = keyword.upper()
        if upper in params:
            raise _error(501, "5.5.4", f"Duplicate {upper} parameter")
        params[upper] = value if eq else None
    return params


def _mail_params(raw: dict[str, str | None]) -> EnvelopeParams:
    size: int | None = None
    body: str | None = None
    ret: str | None = None
    envid: str | None = None
    smtputf8 = False
    for keyword, value in raw.items():
        if keyword == "SIZE":  # RFC 1870 §3
            if value is None or not value.isdigit() or len(value) > _SIZE_DIGITS:
                raise _error(501, "5.5.4", "Invalid SIZE parameter")
            size = int(value)
        elif keyword == "BODY":  # RFC 6152 §2
            if value is None or value.upper() not in {"7BIT", "8BITMIME"}:
                if value is not None and value.upper() == "BINARYMIME":
                    raise _error(555, "5.5.4", "BINARYMIME not supported")
                raise _error(501, "5.5.4", "Invalid BODY parameter")
            body = value.upper()
        elif keyword == "SMTPUTF8":  # RFC 6531 §3.4
            if value is not None:
                raise _error(501, "5.5.4", "SMTPUTF8 takes no value")
            smtputf8 = True
        elif keyword == "RET":  # RFC 3461 §4.3
            if value is None or value.upper() not in {"FULL", "HDRS"}:
                raise _error(501, "5.5.4", "Invalid RET parameter")
            ret = value.upper()
        elif keyword == "ENVID":  # RFC 3461 §4.4
            if value is None:
                raise _error(501, "5.5.4", "Invalid ENVID parameter")
            envid = xtext_decode(value)
            if len(envid) > 100:
                raise _error(501, "5.5.4", "ENVID too long")
        elif keyword == "AUTH":  # RFC 4954 §5: accepted, not trusted, ignored
            if value is None:
                raise _error(501, "5.5.4", "Invalid AUTH parameter")
        else:
            raise _error(*_reply_args(UNKNOWN_PARAMETER))
    return EnvelopeParams(size=size, body=body, ret=ret, envid=envid, smtputf8=smtputf8)


_NOTIFY_WORDS = frozenset({"SUCCESS", "FAILURE", "DELAY"})
_ADDR_TYPE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*)")


def _rcpt_params(raw: dict[str, str | None]) -> RecipientParams:
    notify: tuple[str, ...] = ()
    orcpt: str | None = None
    for keyword, value in raw.items():
        if keyword == "NOTIFY":  # RFC 3461 §4.1
            if value is None:
                raise _error(501, "5.5.4", "Invalid NOTIFY parameter")
            words = tuple(word.upper() for word in value.split(","))
            valid = words == ("NEVER",) or (
                set(words) <= _NOTIFY_WORDS and len(set(words)) == len(words)
            )
            if not valid:
                raise _error(501, "5.5.4", "Invalid NOTIFY parameter")
            notify = words
        elif keyword == "ORCPT":  # RFC 3461 §4.2: addr-type ";" xtext
            if value is None:
                raise _error(501, "5.5.4", "Invalid ORCPT parameter")
            addr_type, semi, address = value.partition(";")
            if not semi or _ADDR_TYPE.fullmatch(addr_type) is None or not address:
                raise _error(501, "5.5.4", "Invalid ORCPT parameter")
            orcpt = f"{addr_type.lower()};{xtext_decode(address)}"
        else:
            raise _error(*_reply_args(UNKNOWN_PARAMETER))
    return RecipientParams(notify=notify, orcpt=orcpt)


# ------------------------------------------------------------------ lines


def _decode(line: bytes) -> str:
    if b"\x00" in line:
        raise _error(500, "5.5.2", "NUL character not allowed")
    if b"\r" in line or b"\n" in line:
        raise _error(500, "5.5.2", "Bare CR or LF not allowed")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(500, "5.5.2", "Invalid UTF-8 in command") from None


def _split_path_and_params(argument: str, prefix: str) -> tuple[str, list[str]]:
    """``FROM:<path> PARAM=...`` → (``<path>``, params)."""
    if argument[: len(prefix)].upper() != prefix:
        raise _error(501, "5.5.4", f"Syntax: {prefix}<address>")
    rest = argument[len(prefix) :].lstrip(" ")  # a space after ':' is common
    if not rest.startswith("<"):
        raise _error(*_reply_args(BAD_ADDRESS))
    # The path ends at the first '>' outside a quoted local part.
    quoted = False
    escaped = False
    for index, char in enumerate(rest):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            path, tail = rest[: index + 1], rest[index + 1 :]
            if tail and not tail.startswith(" "):
                raise _error(*_reply_args(BAD_ADDRESS))
            return path, tail.split()
    raise _error(*_reply_args(BAD_ADDRESS))


def _no_argument(verb: str, argument: str) -> None:
    if argument:
        raise _error(501, "5.5.4", f"Syntax: {verb} takes no arguments")


def _line_limit(verb: str) -> int:
    if verb == "AUTH":
        return AUTH_LINE_LIMIT
    if verb == "MAIL":
        return MAIL_LINE_LIMIT
    if verb == "RCPT":
        return RCPT_LINE_LIMIT
    return COMMAND_LINE_LIMIT


def parse_command(line: bytes, *, utf8: bool = False) -> Command:
    """Parse one command line (without CRLF).

    ``utf8`` says the current transaction was opened with ``SMTPUTF8``, which lets
    RCPT paths and parameters carry UTF-8 (RFC 6531 §3.4).
    """
    text = _decode(line).rstrip(" ")
    verb, _, argument = text.partition(" ")
    verb = verb.upper()
    argument = argument.strip(" ")
    if len(line) + 2 > _line_limit(verb):
        raise _error(*_reply_args(LINE_TOO_LONG))
    if not verb.isascii() or not verb.isalpha():
        return Unknown(verb[:32])
    if verb in {"HELO", "EHLO"}:  # RFC 5321 §4.1.1.1: one domain or address literal
        printable = all(0x21 <= ord(char) <= 0x7E for char in argument)
        if not argument or not printable:
            raise _error(501, "5.5.4", f"Syntax: {verb} hostname")
        return Helo(argument) if verb == "HELO" else Ehlo(argument)
    if verb == "MAIL":
        path_text, words = _split_path_and_params(argument, "FROM:")
        raw = _parse_params(words, utf8=True)
        params = _mail_params(raw)
        if not params.smtputf8:
            _require_ascii(path_text, words, "sender")
        address = parse_path(path_text, utf8=params.smtputf8, allow_null=True)
        return MailFrom(address, params)
    if verb == "RCPT":
        path_text, words = _split_path_and_params(argument, "TO:")
        if not utf8:
            _require_ascii(path_text, words, "recipient")
        rcpt = _rcpt_params(_parse_params(words, utf8=utf8))
        return RcptTo(parse_path(path_text, utf8=utf8, allow_null=False), rcpt)
    if verb == "DATA":
        _no_argument(verb, argument)
        return Data()
    if verb == "BDAT":  # RFC 3030 §3: BDAT chunk-size [SP "LAST"]
        words = argument.split(" ")
        size_text = words[0]
        last = len(words) == 2 and words[1].upper() == "LAST"
        if not size_text.isdigit() or len(size_text) > _SIZE_DIGITS:
            raise _error(501, "5.5.4", "Syntax: BDAT size [LAST]")
        if len(words) > 2 or (len(words) == 2 and not last):
            raise _error(501, "5.5.4", "Syntax: BDAT size [LAST]")
        return Bdat(int(size_text), last)
    simple: dict[str, Command] = {
        "RSET": Rset(),
        "QUIT": Quit(),
        "STARTTLS": StartTLS(),
    }
    if verb in simple:
        _no_argument(verb, argument)
        return simple[verb]
    if verb == "NOOP":  # RFC 5321 §4.1.1.9: an argument is ignored
        return Noop()
    if verb in {"VRFY", "EXPN"}:
        if not argument:
            raise _error(501, "5.5.4", f"Syntax: {verb} address")
        return Vrfy(argument) if verb == "VRFY" else Expn(argument)
    if verb == "HELP":
        return Help(argument)
    if verb == "AUTH":  # RFC 4954 §4: AUTH mechanism [initial-response]
        words = argument.split(" ")
        if not words[0] or len(words) > 2:
            raise _error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
        initial = words[1].encode("ascii", "replace") if len(words) == 2 else None
        return Auth(words[0].upper(), initial)
    if verb == "ETRN":  # RFC 1985
        if not argument:
            raise _error(501, "5.5.4", "Syntax: ETRN node")
        return Etrn(argument)
    return Unknown(verb[:32])


def _require_ascii(path: str, words: list[str], role: str) -> None:
    """RFC 6531 §3.5: UTF-8 only in a transaction opened with SMTPUTF8."""
    if not path.isascii():
        raise _error(553, "5.6.7", f"Non-ASCII addresses not permitted for that {role}")
    if not all(word.isascii() for word in words):
        raise _error(*_reply_args(BAD_PARAMETER))
