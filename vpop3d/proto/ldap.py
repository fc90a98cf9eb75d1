"""LDAP v3 server (RFC 4511) publishing the read-only Global Address Book.

The only module that imports ldaptor: its BER codec turns each request PDU into
one of the typed request dataclasses below and encodes our responses; no ldaptor
object leaves this module. Search evaluation is in ``proto.directory``; entries
come from a :class:`~vpop3d.proto.directory.Directory`, binds go to
``ports.Authenticator``. Writes are refused: the address book is edited in WebMail
(manual L1670, L7295). One request is handled at a time, so responses come out
in request order. ldaptor is untyped, so the decoding helpers take ``Any``.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ldaptor.protocols import pureber, pureldap
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IOpenSSLServerConnectionCreator,
    IReactorTime,
    ITLSTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override

from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import PasswordCredentials
from vpop3d.ports import Authenticator, LoginContext, Principal
from vpop3d.proto.directory import (
    And,
    Approx,
    Directory,
    DirectoryEntry,
    Equal,
    Filter,
    GreaterOrEqual,
    InvalidDN,
    LessOrEqual,
    NormalDN,
    Not,
    Or,
    Present,
    Scope,
    SortKey,
    Substrings,
    Unsupported,
    in_scope,
    matches,
    normalise_dn,
    select_attributes,
    sort_entries,
)

__all__ = [
    "PAGED_RESULTS",
    "SORT_REQUEST",
    "LDAPConfig",
    "LDAPServerFactory",
    "LDAPServerProtocol",
    "ResultCode",
]

PAGED_RESULTS = "1.2.840.113556.1.4.319"  # RFC 2696
SORT_REQUEST = "1.2.840.113556.1.4.473"  # RFC 2891 §1.1
SORT_RESPONSE = "1.2.840.113556.1.4.474"  # RFC 2891 §1.2
WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"  # RFC 4532
START_TLS = "1.3.6.1.4.1.1466.20037"  # RFC 4511 §4.14
NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"  # RFC 4511 §4.4.1
READ_ONLY_TEXT = "The Global Address Book is read-only over LDAP; edit it in WebMail"
TLSCreator = IOpenSSLServerConnectionCreator | CertificateOptions
MAX_PAGED_SEARCHES = 8  # outstanding paged-results cookies kept per connection


class ResultCode(enum.IntEnum):
    """RFC 4511 Appendix A.1 (the ones this server sends)."""

    SUCCESS = 0
    OPERATIONS_ERROR = 1
    PROTOCOL_ERROR = 2
    SIZE_LIMIT_EXCEEDED = 4
    COMPARE_FALSE = 5
    COMPARE_TRUE = 6
    AUTH_METHOD_NOT_SUPPORTED = 7
    UNAVAILABLE_CRITICAL_EXTENSION = 12
    NO_SUCH_ATTRIBUTE = 16
    NO_SUCH_OBJECT = 32
    INVALID_DN_SYNTAX = 34
    INVALID_CREDENTIALS = 49
    INSUFFICIENT_ACCESS_RIGHTS = 50
    UNAVAILABLE = 52
    UNWILLING_TO_PERFORM = 53


class LDAPError(Exception):
    """A result that ends an operation; the adapter sends it as the LDAPResult."""

    def __init__(self, code: ResultCode, message: str = "", matched: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.matched = matched


class ProtocolViolation(Exception):
    """A PDU that cannot be decoded: the connection ends (RFC 4511 §4.1.1)."""


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Control:
    oid: str
    critical: bool
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Bind:
    version: int
    name: str
    password: str
    sasl: bool


@dataclass(frozen=True, slots=True)
class Search:
    base: str
    scope: Scope
    size_limit: int
    types_only: bool
    filter: Filter
    attributes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    dn: str
    attribute: str
    value: str


@dataclass(frozen=True, slots=True)
class Extended:
    name: str
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Write:
    """add, modify, delete or modrdn: all refused."""

    operation: str
    dn: str


@dataclass(frozen=True, slots=True)
class Unbind:
    pass


@dataclass(frozen=True, slots=True)
class Abandon:
    message_id: int


Request = Bind | Search | Compare | Extended | Write | Unbind | Abandon


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    request: Request
    controls: tuple[Control, ...] = ()


# --------------------------------------------------------------------------- codec

_DECODER = pureldap.LDAPBERDecoderContext_TopLevel(
    inherit=pureldap.LDAPBERDecoderContext_LDAPMessage(
        fallback=pureldap.LDAPBERDecoderContext(fallback=pureber.BERDecoderContext()),
        inherit=pureldap.LDAPBERDecoderContext(fallback=pureber.BERDecoderContext()),
    )
)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _filter(item: Any) -> Filter:
    """ldaptor's filter objects -> ``proto.directory`` filters (RFC 4511 §4.5.1.7)."""
    if isinstance(item, pureldap.LDAPFilter_and):
        return And(tuple(_filter(part) for part in item))
    if isinstance(item, pureldap.LDAPFilter_or):
        return Or(tuple(_filter(part) for part in item))
    if isinstance(item, pureldap.LDAPFilter_not):
        return Not(_filter(item.value))
    if isinstance(item, pureldap.LDAPFilter_present):
        return Present(_text(item.value))
    if isinstance(item, pureldap.LDAPFilter_substrings):
        initial: str | None = None
        final: str | None = None
        middle: list[str] = []
        for part in item.substrings:
            if isinstance(part, pureldap.LDAPFilter_substrings_initial):
                initial = _text(part.value)
            elif isinstance(part, pureldap.LDAPFilter_substrings_final):
                final = _text(part.value)
            else:
                middle.append(_text(part.value))
        return Substrings(_text(item.type), initial, tuple(middle), final)
    if isinstance(item, pureldap.LDAPAttributeValueAssertion):
        attribute = _text(item.attributeDesc.value)
        value = _text(item.assertionValue.value)
        if isinstance(item, pureldap.LDAPFilter_greaterOrEqual):
            return GreaterOrEqual(attribute, value)
        if isinstance(item, pureldap.LDAPFilter_lessOrEqual):
            return LessOrEqual(attribute, value)
        if isinstance(item, pureldap.LDAPFilter_approxMatch):
            return Approx(attribute, value)
        return Equal(attribute, value)
    return Unsupported(type(item).__name__)


def _request(op: Any) -> Request:
    if isinstance(op, pureldap.LDAPBindRequest):
        password = "" if op.sasl else _text(op.auth)
        return Bind(int(op.version), _text(op.dn), password, bool(op.sasl))
    if isinstance(op, pureldap.LDAPSearchRequest):
        try:
            scope = Scope(int(op.scope))
        except ValueError:
            raise ProtocolViolation(f"bad scope {op.scope!r}") from None
        return Search(
            base=_text(op.baseObject),
            scope=scope,
            size_limit=max(0, int(op.sizeLimit)),
            types_only=bool(op.typesOnly),
            filter=_filter(op.filter),
            attributes=tuple(_text(name) for name in op.attributes),
        )
    if isinstance(op, pureldap.LDAPUnbindRequest):
        return Unbind()
    if isinstance(op, pureldap.LDAPAbandonRequest):
        return Abandon(int(op.value))
    if isinstance(op, pureldap.LDAPCompareRequest):
        return Compare(
            _text(op.entry), _text(op.ava.attributeDesc.value), _text(op.ava.assertionValue.value)
        )
    if isinstance(op, pureldap.LDAPExtendedRequest):
        value = op.requestValue
        return Extended(_text(op.requestName), value if isinstance(value, bytes) else None)
    if isinstance(op, pureldap.LDAPAddRequest):
        return Write("add", _text(op.entry))
    if isinstance(op, pureldap.LDAPModifyRequest):
        return Write("modify", _text(op.object))
    if isinstance(op, pureldap.LDAPDelRequest):
        return Write("delete", _text(op.value))
    if isinstance(op, pureldap.LDAPModifyDNRequest):
        return Write("modrdn", _text(op.entry))
    raise ProtocolViolation(f"not a request: {type(op).__name__}")


def decode_message(buffer: bytes) -> tuple[Message | None, int]:
    """The first complete LDAPMessage in ``buffer`` and the octets it used.

    ``(None, 0)``: more data is needed. Raises :class:`ProtocolViolation`.
    """
    if not buffer:
        return None, 0
    if buffer[0] != 0x30:  # every LDAPMessage is a universal SEQUENCE
        raise ProtocolViolation("not an LDAPMessage")
    try:
        decoded, used = pureber.berDecodeObject(_DECODER, buffer)
    except pureber.BERExceptionInsufficientData:
        return None, 0
    except Exception as exc:  # noqa: BLE001  ldaptor raises anything on garbage
        raise ProtocolViolation(f"undecodable PDU: {exc!r}") from None
    if decoded is None:
        return None, 0
    if not isinstance(decoded, pureldap.LDAPMessage):
        raise ProtocolViolation("not an LDAPMessage")
    try:
        controls = tuple(
            Control(_text(oid), bool(critical), value if isinstance(value, bytes) else None)
            for oid, critical, value in decoded.controls or ()
        )
        return Message(int(decoded.id), _request(decoded.value), controls), int(used)
    except ProtocolViolation:
        raise
    except Exception as exc:  # noqa: BLE001  a decodable PDU with nonsense inside
        raise ProtocolViolation(f"bad request: {exc!r}") from None


def _ber(tag: int, content: bytes) -> bytes:
    """One BER TLV in definite form (X.690 §8.1)."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _ber_int(value: int) -> bytes:
    return _ber(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def _ber_items(data: bytes) -> list[tuple[int, bytes]]:
    """The TLVs of a BER content octet string, for control values."""
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ValueError("truncated BER")
        tag, size = data[offset], data[offset + 1]
        offset += 2
        if size & 0x80:
            count = size & 0x7F
            if count == 0 or count > 4 or offset + count > len(data):
                raise ValueError("bad BER length")
            size = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + size > len(data):
            raise ValueError("truncated BER")
        items.append((tag, data[offset : offset + size]))
        offset += size
    return items


@dataclass(frozen=True, slots=True)
class PagedRequest:
    size: int
    cookie: bytes


def parse_paged(value: bytes | None) -> PagedRequest:
    """RFC 2696 §2: realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }."""
    try:
        ((tag, body),) = _ber_items(value or b"")
        (size_tag, size), (cookie_tag, cookie) = _ber_items(body)
    except ValueError:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "bad paged results control") from None
    if tag != 0x30 or size_tag != 0x02 or cookie_tag != 0x04:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "bad paged results control")
    return PagedRequest(max(0, int.from_bytes(size, "big", signed=True)), cookie)


def parse_sort(value: bytes | None) -> tuple[SortKey, ...]:
    """RFC 2891 §1.1: SEQUENCE OF SEQUENCE { attributeType, [0] orderingRule, [1] reverse }."""
    keys: list[SortKey] = []
    try:
        ((tag, body),) = _ber_items(value or b"")
        if tag != 0x30:
            raise ValueError("not a SEQUENCE")
        for key_tag, key in _ber_items(body):
            parts = _ber_items(key)
            if key_tag != 0x30 or not parts or parts[0][0] != 0x04:
                raise ValueError("bad sort key")
            reverse = any(t == 0x81 and v not in (b"", b"\x00") for t, v in parts[1:])
            keys.append(SortKey(_text(parts[0][1]), reverse))
    except ValueError:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "bad sort control") from None
    if not keys:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "empty sort control")
    return tuple(keys)


def paged_response(total: int, cookie: bytes) -> bytes:
    return _ber(0x30, _ber_int(total) + _ber(0x04, cookie))


def sort_response(code: ResultCode) -> bytes:
    return _ber(0x30, _ber(0x0A, bytes([int(code)])))


_RESULT_TYPES: dict[str, Any] = {
    "bind": pureldap.LDAPBindResponse,
    "search": pureldap.LDAPSearchResultDone,
    "compare": pureldap.LDAPCompareResponse,
    "extended": pureldap.LDAPExtendedResponse,
    "add": pureldap.LDAPAddResponse,
    "modify": pureldap.LDAPModifyResponse,
    "delete": pureldap.LDAPDelResponse,
    "modrdn": pureldap.LDAPModifyDNResponse,
}


def _kind(request: Request) -> str:
    if isinstance(request, Write):
        return request.operation
    return type(request).__name__.lower()


def encode_result(
    message_id: int,
    kind: str,
    code: ResultCode,
    text: str = "",
    matched: str = "",
    controls: Sequence[tuple[str, bytes]] = (),
    response: bytes | None = None,
    response_name: str | None = None,
) -> bytes:
    """The LDAPResult that ends an operation of ``kind`` ("bind", "search", "add"...)."""
    result_type = _RESULT_TYPES[kind]
    fields: dict[str, Any] = {
        "resultCode": int(code),
        "matchedDN": matched.encode(),
        "errorMessage": text.encode(),
    }
    if kind == "extended" and response is not None:
        fields["response"] = response
    if kind == "extended" and response_name is not None:
        fields["responseName"] = response_name.encode()
    return _encode(message_id, result_type(**fields), controls)


def encode_entry(
    message_id: int, dn: str, attributes: Sequence[tuple[str, Sequence[str]]]
) -> bytes:
    """RFC 4511 §4.5.2 SearchResultEntry, encoded directly: it is the hot path of a
    large search, and ldaptor's generic encoder is several times slower."""
    parts = b"".join(
        _ber(
            0x30,
            _ber(0x04, name.encode())
            + _ber(0x31, b"".join(_ber(0x04, v.encode()) for v in values)),
        )
        for name, values in attributes
    )
    op = _ber(0x64, _ber(0x04, dn.encode()) + _ber(0x30, parts))  # [APPLICATION 4]
    return _ber(0x30, _ber_int(message_id) + op)


def encode_notice_of_disconnection(code: ResultCode, text: str) -> bytes:
    """RFC 4511 §4.4.1: an unsolicited notification (message ID 0), then we close."""
    op = pureldap.LDAPExtendedResponse(
        resultCode=int(code),
        errorMessage=text.encode(),
        responseName=NOTICE_OF_DISCONNECTION.encode(),
    )
    return _encode(0, op, ())


def _encode(message_id: int, op: Any, controls: Sequence[tuple[str, bytes]]) -> bytes:
    wire_controls = [(oid.encode(), None, value) for oid, value in controls] or None
    wire: bytes = pureldap.LDAPMessage(op, id=message_id, controls=wire_controls).toWire()
    return wire


# --------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class LDAPConfig:
    """One listener's settings, read again for each connection."""

    require_auth: bool = False  # manual L7287: anonymous reads of the GAB allowed when off
    max_results: int = 1000  # server-side size limit for searches without paging
    idle_timeout: float = 600.0  # seconds without a request before we close
    max_request_size: int = 256 * 1024  # one PDU, octets
    secure: bool = False  # the channel is TLS (implicit-TLS listener)


@dataclass
class _PagedSearch:
    """What an outstanding RFC 2696 cookie stands for."""

    search: Search
    remaining: list[DirectoryEntry]
    total: int
    final_code: ResultCode


@dataclass
class _Outcome:
    code: ResultCode = ResultCode.SUCCESS
    text: str = ""
    controls: list[tuple[str, bytes]] = field(default_factory=list)
    response: bytes | None = None  # extended operations
    response_name: str | None = None
    then: Callable[[], None] | None = None  # run once the result is written


class LDAPServerFactory(Factory):
    """Builds one :class:`LDAPServerProtocol` per connection."""

    noisy = False

    def __init__(
        self,
        config: LDAPConfig | Callable[[], LDAPConfig],
        *,
        directory: Directory,
        authenticator: Authenticator,
        clock: IReactorTime,
        tls: TLSCreator | None = None,
    ) -> None:
        self._config = config
        self.directory = directory
        self.authenticator = authenticator
        self.clock = clock
        self.tls = tls  # None: StartTLS is not offered

    @property
    def config(self) -> LDAPConfig:
        config = self._config
        return config if isinstance(config, LDAPConfig) else config()

    @override
    def buildProtocol(self, addr: object) -> LDAPServerProtocol:
        return LDAPServerProtocol(self, self.config, str(getattr(addr, "host", "")))


class LDAPServerProtocol(Protocol):
    """One LDAP connection: decode, answer one request at a time, encode."""

    _log = Logger(namespace="vpop3d.ldap")

    def __init__(self, factory: LDAPServerFactory, config: LDAPConfig, peer_ip: str) -> None:
        self._factory = factory
        self._config = config
        self._peer_ip = peer_ip
        self._buffer = b""
        self._busy = False
        self._closing = False
        self._principal: Principal | None = None
        self._pages: OrderedDict[bytes, _PagedSearch] = OrderedDict()
        self._next_cookie = 0
        self._timer: IDelayedCall | None = None
        self._secure = config.secure

    # ------------------------------------------------------------ Twisted side

    @override
    def connectionMade(self) -> None:
        self._restart_timer()

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        self._pages.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        self._restart_timer()
        self._process()

    def _restart_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._config.idle_timeout > 0:
            self._timer = self._factory.clock.callLater(self._config.idle_timeout, self._idle)

    def _idle(self) -> None:
        self._timer = None
        if self._busy:
            self._restart_timer()
            return
        self._log.info("{peer}: idle timeout", peer=self._peer_ip)
        self._close()

    def _close(self, notice: tuple[ResultCode, str] | None = None) -> None:
        if self._closing:
            return
        if notice is not None:
            self.transport.write(encode_notice_of_disconnection(*notice))  # type: ignore[union-attr]  # connected
        self._closing = True
        self.transport.loseConnection()  # type: ignore[union-attr]  # connected

    def _process(self) -> None:
        """Decode and start requests until one is pending or the buffer runs dry."""
        while not self._busy and not self._closing:
            try:
                message, used = decode_message(self._buffer)
            except ProtocolViolation as exc:
                self._log.info("{peer}: {error}", peer=self._peer_ip, error=str(exc))
                self._close((ResultCode.PROTOCOL_ERROR, "malformed request"))
                return
            if message is None:
                if len(self._buffer) > self._config.max_request_size:
                    self._close((ResultCode.PROTOCOL_ERROR, "request too large"))
                return
            self._buffer = self._buffer[used:]
            self._start(message)

    def _start(self, message: Message) -> None:
        request = message.request
        if isinstance(request, Unbind):  # RFC 4511 §4.3: no response
            self._close()
            return
        if isinstance(request, Abandon):  # RFC 4511 §4.11: no response
            return
        self._busy = True
        self.transport.pauseProducing()  # type: ignore[union-attr]  # connected
        done = Deferred.fromCoroutine(self._answer(message))
        done.addBoth(self._finished)

    def _finished(self, result: object) -> None:
        self._busy = False
        if isinstance(result, Failure):  # a bug past the command boundary
            self._log.failure("{peer}: request not answered", result, peer=self._peer_ip)
            self._close((ResultCode.UNAVAILABLE, "internal error"))
        if self._closing:
            return
        self.transport.resumeProducing()  # type: ignore[union-attr]  # connected
        self._process()

    def _write(self, data: bytes) -> None:
        if not self._closing:
            self.transport.write(data)  # type: ignore[union-attr]  # connected

    # ------------------------------------------------------------ operations

    async def _answer(self, message: Message) -> None:
        """The command boundary: every request ends in exactly one LDAPResult."""
        kind = _kind(message.request)
        try:
            outcome = await self._handle(message)
        except LDAPError as exc:
            self._write(encode_result(message.id, kind, exc.code, exc.message, exc.matched))
            return
        except Exception:  # noqa: BLE001  command boundary
            self._log.failure("{peer}: {kind} failed", peer=self._peer_ip, kind=kind)
            self._write(
                encode_result(message.id, kind, ResultCode.UNAVAILABLE, "temporary failure")
            )
            return
        self._write(
            encode_result(
                message.id,
                kind,
                outcome.code,
                outcome.text,
                controls=outcome.controls,
                response=outcome.response,
                response_name=outcome.response_name,
            )
        )
        if outcome.then is not None:
            outcome.then()

    async def _handle(self, message: Message) -> _Outcome:
        request = message.request
        supported = {PAGED_RESULTS, SORT_REQUEST} if isinstance(request, Search) else set()
        for control in message.controls:  # RFC 4511 §4.1.11
            if control.critical and control.oid not in supported:
                raise LDAPError(
                    ResultCode.UNAVAILABLE_CRITICAL_EXTENSION, f"unsupported control {control.oid}"
                )
        if isinstance(request, Bind):
            return await self._bind(request)
        if isinstance(request, Search):
            return await self._search(message.id, request, message.controls)
        if isinstance(request, Compare):
            return await self._compare(request)
        if isinstance(request, Extended):
            return self._extended(request)
        if isinstance(request, Write):
            self._log.info(
                "{peer}: {op} {dn!r} refused: read-only",
                peer=self._peer_ip,
                op=request.operation,
                dn=request.dn,
            )
            raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, READ_ONLY_TEXT)
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "unexpected request")

    async def _bind(self, request: Bind) -> _Outcome:
        """RFC 4513 §5.1: anonymous or simple bind; a failed bind leaves us anonymous."""
        self._principal = None
        if request.version not in (2, 3):
            raise LDAPError(ResultCode.PROTOCOL_ERROR, "only LDAP v3 is supported")
        if request.sasl:
            raise LDAPError(ResultCode.AUTH_METHOD_NOT_SUPPORTED, "use simple bind")
        if not request.password:
            if request.name:  # RFC 4513 §5.1.2 unauthenticated bind
                raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "unauthenticated bind refused")
            return _Outcome()
        login = await self._login_for(request.name)
        context = LoginContext("ldap", self._peer_ip, self._secure)
        try:
            principal = await self._factory.authenticator.authenticate(
                PasswordCredentials(login, request.password), context
            )
        except LoginFailed:
            raise LDAPError(ResultCode.INVALID_CREDENTIALS, "invalid credentials") from None
        self._principal = principal
        self._log.info("{peer}: bound as {user}", peer=self._peer_ip, user=principal.username)
        return _Outcome()

    async def _login_for(self, name: str) -> str:
        """The login name for a bind name: a plain name/address, or an entry's DN."""
        if "=" not in name:
            return name
        try:
            wanted = normalise_dn(name)
        except InvalidDN:
            raise LDAPError(ResultCode.INVALID_CREDENTIALS, "invalid credentials") from None
        for entry in await self._factory.directory.entries():
            if entry.login and normalise_dn(entry.dn) == wanted:
                return entry.login
        raise LDAPError(ResultCode.INVALID_CREDENTIALS, "invalid credentials")

    def _check_read_access(self) -> None:
        if self._config.require_auth and self._principal is None:
            raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS, "bind first")

    async def _search(
        self, message_id: int, request: Search, controls: Sequence[Control]
    ) -> _Outcome:
        try:
            base = normalise_dn(request.base)
        except InvalidDN:
            raise LDAPError(ResultCode.INVALID_DN_SYNTAX, "invalid base DN") from None
        if not base and request.scope is Scope.BASE:  # RFC 4512 §5.1 root DSE
            root = self._root_dse()
            if matches(request.filter, root):
                wanted = ("*",) if "+" in request.attributes else request.attributes
                self._send_entry(message_id, root, wanted, request.types_only)
            return _Outcome()
        self._check_read_access()
        by_oid = {control.oid: control for control in controls}
        paged = parse_paged(by_oid[PAGED_RESULTS].value) if PAGED_RESULTS in by_oid else None
        sort = parse_sort(by_oid[SORT_REQUEST].value) if SORT_REQUEST in by_oid else ()
        outcome = _Outcome()
        if sort:
            outcome.controls.append((SORT_RESPONSE, sort_response(ResultCode.SUCCESS)))
        if paged is not None and paged.cookie:
            state = self._pages.pop(paged.cookie, None)
            if state is None or state.search != request:
                raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "unknown paged results cookie")
        else:
            state = await self._evaluate(request, base, sort, paged is not None)
        if paged is None:
            for entry in state.remaining:
                self._send_entry(message_id, entry, request.attributes, request.types_only)
            outcome.code = state.final_code
            if outcome.code is ResultCode.SIZE_LIMIT_EXCEEDED:
                outcome.text = "size limit exceeded"
            return outcome
        # RFC 2696 §3: a page, then a cookie for the rest; size 0 abandons the search.
        page, rest = (state.remaining[: paged.size], state.remaining[paged.size :])
        if paged.size == 0:
            rest = []
        for entry in page:
            self._send_entry(message_id, entry, request.attributes, request.types_only)
        cookie = b""
        if rest:
            self._next_cookie += 1
            cookie = str(self._next_cookie).encode()
            self._pages[cookie] = _PagedSearch(request, rest, state.total, state.final_code)
            while len(self._pages) > MAX_PAGED_SEARCHES:
                self._pages.popitem(last=False)
        elif paged.size:
            outcome.code = state.final_code
        outcome.controls.append((PAGED_RESULTS, paged_response(state.total, cookie)))
        return outcome

    async def _evaluate(
        self, request: Search, base: NormalDN, sort: Sequence[SortKey], paged: bool
    ) -> _PagedSearch:
        """All entries the search returns, in order, with the limit already applied."""
        entries = await self._factory.directory.entries()
        normal = [(normalise_dn(entry.dn), entry) for entry in entries]
        if base and not any(dn == base for dn, _ in normal):
            # RFC 4511 §4.1.9: matchedDN names the closest existing superior.
            text = {dn: entry.dn for dn, entry in normal}
            matched = next((text[base[k:]] for k in range(1, len(base)) if base[k:] in text), "")
            raise LDAPError(ResultCode.NO_SUCH_OBJECT, "no such entry", matched)
        found: list[DirectoryEntry] = [
            entry
            for dn, entry in normal
            if in_scope(dn, base, request.scope) and matches(request.filter, entry) is True
        ]
        if sort:
            found = sort_entries(found, sort)
        total = len(found)
        limit = request.size_limit
        if not paged and self._config.max_results > 0:
            limit = min(limit or self._config.max_results, self._config.max_results)
        code = ResultCode.SUCCESS
        if limit and total > limit:  # RFC 4511 §4.5.1.4
            found = found[:limit]
            code = ResultCode.SIZE_LIMIT_EXCEEDED
        return _PagedSearch(request, found, total, code)

    async def _compare(self, request: Compare) -> _Outcome:
        """RFC 4511 §4.10."""
        try:
            wanted = normalise_dn(request.dn)
        except InvalidDN:
            raise LDAPError(ResultCode.INVALID_DN_SYNTAX, "invalid DN") from None
        self._check_read_access()
        for entry in await self._factory.directory.entries():
            if normalise_dn(entry.dn) == wanted:
                if not matches(Present(request.attribute), entry):
                    raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE, "no such attribute")
                if matches(Equal(request.attribute, request.value), entry):
                    return _Outcome(ResultCode.COMPARE_TRUE)
                return _Outcome(ResultCode.COMPARE_FALSE)
        raise LDAPError(ResultCode.NO_SUCH_OBJECT, "no such entry")

    def _extended(self, request: Extended) -> _Outcome:
        if request.name == WHO_AM_I:  # RFC 4532 §2.2: "" for anonymous
            principal = self._principal
            return _Outcome(response=f"u:{principal.username}".encode() if principal else b"")
        if request.name == START_TLS and self._factory.tls is not None:
            if self._secure:  # RFC 4511 §4.14.1: TLS already established
                raise LDAPError(ResultCode.OPERATIONS_ERROR, "TLS is already active")
            return _Outcome(response_name=START_TLS, then=self._start_tls)
        # RFC 4511 §4.12: an unrecognised request name is a protocolError.
        raise LDAPError(ResultCode.PROTOCOL_ERROR, f"unsupported extended operation {request.name}")

    def _start_tls(self) -> None:
        # Like RFC 3207 §6: octets the client pipelined after StartTLS are dropped.
        self._buffer = b""
        transport = self.transport
        if self._factory.tls is None or not ITLSTransport.providedBy(transport):
            self._log.error("ldap StartTLS without a TLS-capable transport")
            self._close()
            return
        ITLSTransport(transport).startTLS(self._factory.tls)
        self._secure = True

    def _root_dse(self) -> _Entry:
        return _Entry(
            dn="",
            attributes={
                "objectClass": ("top",),
                "namingContexts": (self._factory.directory.naming_context,),
                "supportedLDAPVersion": ("3",),
                "supportedControl": (PAGED_RESULTS, SORT_REQUEST),
                "supportedExtension": (
                    (WHO_AM_I, START_TLS) if self._factory.tls is not None else (WHO_AM_I,)
                ),
                "vendorName": ("vpop3d",),
            },
        )

    def _send_entry(
        self,
        message_id: int,
        entry: DirectoryEntry,
        requested: Sequence[str],
        types_only: bool,
    ) -> None:
        attributes = select_attributes(entry, requested)
        if types_only:
            attributes = [(name, ()) for name, _ in attributes]
        self._write(encode_entry(message_id, entry.dn, attributes))


@dataclass(frozen=True, slots=True)
class _Entry:
    """An entry this module makes up itself (the root DSE)."""

    dn: str
    attributes: dict[str, tuple[str, ...]]
    login: str | None = None
