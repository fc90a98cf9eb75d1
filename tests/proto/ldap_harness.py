"""Test doubles for the LDAP protocol tests: a fake directory and authenticator, and a
client-side harness that encodes requests and decodes responses with ldaptor's codec."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ldaptor.protocols import pureber, pureldap
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from vpop3d.core.reply import LoginFailed
from vpop3d.core.sasl import Credentials, PasswordCredentials, ScramKeys
from vpop3d.ports import LoginContext, Principal
from vpop3d.proto.directory import DirectoryEntry
from vpop3d.proto.ldap import LDAPConfig, LDAPServerFactory, LDAPServerProtocol

with warnings.catch_warnings():  # ldaptor's filter parser uses pyparsing's old names
    warnings.simplefilter("ignore", DeprecationWarning)
    from ldaptor import ldapfilter


def parse_filter(text: str) -> Any:
    """An RFC 4515 filter string as ldaptor's filter objects (client side)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ldapfilter.parseFilter(text)


PERSON = ("top", "person", "organizationalPerson", "inetOrgPerson")


@dataclass(frozen=True)
class FakeEntry:
    dn: str
    attributes: Mapping[str, tuple[str, ...]]
    login: str | None = None


def person(dn: str, cn: str, mail: str, uid: str, login: str | None = None) -> FakeEntry:
    attributes = {"objectClass": PERSON, "cn": (cn,), "mail": (mail,), "uid": (uid,)}
    return FakeEntry(dn, attributes, login)


TREE: tuple[FakeEntry, ...] = (
    FakeEntry("O=VPOP3", {"objectClass": ("top", "organization"), "o": ("VPOP3",)}),
    FakeEntry("OU=Users,O=VPOP3", {"objectClass": ("top", "organizationalUnit"), "ou": ("Users",)}),
    FakeEntry(
        "OU=External,O=VPOP3", {"objectClass": ("top", "organizationalUnit"), "ou": ("External",)}
    ),
    person("uid=fred,OU=Users,O=VPOP3", "Fred Bloggs", "fred@example.test", "fred", "fred"),
    person("uid=alice,OU=Users,O=VPOP3", "Alice Smith", "alice@example.test", "alice", "alice"),
    person("uid=bob,OU=Users,O=VPOP3", "bob", "bob@example.test", "bob", "bob"),
    person("uid=ext-1,OU=External,O=VPOP3", "Fred External", "fe@other.test", "ext-1"),
    person("uid=ext-2,OU=External,O=VPOP3", "Zed Zulu", "zed@other.test", "ext-2"),
)


@dataclass
class FakeDirectory:
    entries_list: Sequence[FakeEntry] = TREE
    hold: bool = False  # hand out unfired Deferreds (ordering tests)
    held: list[Deferred[Sequence[DirectoryEntry]]] = field(default_factory=list)
    calls: int = 0
    broken: bool = False
    naming_context: str = "O=VPOP3"

    def entries(self) -> Deferred[Sequence[DirectoryEntry]]:
        self.calls += 1
        if self.broken:
            return fail(RuntimeError("database is down"))
        if self.hold:
            pending: Deferred[Sequence[DirectoryEntry]] = Deferred()
            self.held.append(pending)
            return pending
        return succeed(list(self.entries_list))


@dataclass
class FakeAuthenticator:
    passwords: dict[str, str] = field(default_factory=lambda: {"fred": "pw-fred"})
    seen: list[tuple[str, LoginContext]] = field(default_factory=list)

    def authenticate(self, credentials: Credentials, context: LoginContext) -> Deferred[Principal]:
        assert isinstance(credentials, PasswordCredentials)
        self.seen.append((credentials.username, context))
        name = credentials.username.split("@")[0]
        if self.passwords.get(name) != credentials.password:
            return fail(LoginFailed())
        return succeed(Principal(1, name, False, f"{name}@example.test"))

    def scram_keys(self, username: str) -> Deferred[ScramKeys | None]:
        return succeed(None)

    def plaintext_equivalent_enabled(self) -> bool:
        return False


_DECODER = pureldap.LDAPBERDecoderContext_TopLevel(
    inherit=pureldap.LDAPBERDecoderContext_LDAPMessage(
        fallback=pureldap.LDAPBERDecoderContext(fallback=pureber.BERDecoderContext()),
        inherit=pureldap.LDAPBERDecoderContext(fallback=pureber.BERDecoderContext()),
    )
)


def decode_all(data: bytes) -> list[Any]:
    """Every LDAPMessage in ``data`` (the server's output)."""
    messages = []
    while data:
        message, used = pureber.berDecodeObject(_DECODER, data)
        assert message is not None, "incomplete response"
        messages.append(message)
        data = data[used:]
    return messages


@dataclass
class SearchResult:
    entries: list[tuple[str, dict[str, list[str]]]]
    code: int
    message: str
    matched: str
    controls: dict[str, bytes]

    @property
    def dns(self) -> list[str]:
        return [dn for dn, _ in self.entries]


def paged_control(
    size: int, cookie: bytes = b"", critical: bool = True
) -> tuple[bytes, bool, bytes]:
    value = pureber.BERSequence([pureber.BERInteger(size), pureber.BEROctetString(cookie)])
    return (b"1.2.840.113556.1.4.319", critical, value.toWire())


def paged_cookie(value: bytes) -> tuple[int, bytes]:
    sequence, _ = pureber.berDecodeObject(pureber.BERDecoderContext(), value)
    return int(sequence[0].value), bytes(sequence[1].value)


def sort_control(attribute: str, reverse: bool = False) -> tuple[bytes, bool, bytes]:
    key: list[Any] = [pureber.BEROctetString(attribute.encode())]
    if reverse:
        key.append(pureber.BERBoolean(True, tag=pureber.CLASS_CONTEXT | 0x01))
    value = pureber.BERSequence([pureber.BERSequence(key)])
    return (b"1.2.840.113556.1.4.473", False, value.toWire())


@implementer(ITLSTransport)
class TLSStringTransport(StringTransport):  # type: ignore[misc]  # TCP knobs unused
    """A StringTransport that records StartTLS instead of doing a handshake."""

    tls_started = False

    def startTLS(self, context_factory: object) -> None:  # noqa: N802 - Twisted API
        self.tls_started = True


class Harness:
    """One server connection over a StringTransport."""

    def __init__(
        self,
        config: LDAPConfig | None = None,
        directory: FakeDirectory | None = None,
        authenticator: FakeAuthenticator | None = None,
        *,
        tls: bool = False,
    ) -> None:
        self.directory = directory or FakeDirectory()
        self.auth = authenticator or FakeAuthenticator()
        self.clock = Clock()
        self.factory = LDAPServerFactory(
            config or LDAPConfig(),
            directory=self.directory,
            authenticator=self.auth,
            clock=self.clock,
            tls=CertificateOptions() if tls else None,
        )
        peer = IPv4Address("TCP", "192.0.2.7", 4242)
        self.protocol: LDAPServerProtocol = self.factory.buildProtocol(peer)
        self.transport = TLSStringTransport(peerAddress=peer)
        self.protocol.makeConnection(self.transport)
        self._next_id = 0

    def encode(self, op: Any, controls: list[Any] | None = None) -> bytes:
        self._next_id += 1
        wire: bytes = pureldap.LDAPMessage(op, id=self._next_id, controls=controls).toWire()
        return wire

    def send(self, op: Any, controls: list[Any] | None = None) -> None:
        self.protocol.dataReceived(self.encode(op, controls))

    def responses(self) -> list[Any]:
        data = self.transport.value()
        self.transport.clear()
        return decode_all(data)

    def result(self, op: Any, controls: list[Any] | None = None) -> Any:
        """Send one non-search request; its one response op."""
        self.send(op, controls)
        (message,) = self.responses()
        assert message.id == self._next_id
        return message.value

    def bind(self, dn: str = "", password: str = "") -> Any:
        return self.result(pureldap.LDAPBindRequest(dn=dn.encode(), auth=password.encode()))

    def whoami(self) -> bytes:
        response = self.result(pureldap.LDAPExtendedRequest(b"1.3.6.1.4.1.4203.1.11.3"))
        assert response.resultCode == 0
        return bytes(response.response or b"")

    def search(
        self,
        base: str = "O=VPOP3",
        filter_text: str = "(objectClass=*)",
        *,
        scope: int = 2,
        attributes: Sequence[str] = (),
        size_limit: int = 0,
        types_only: bool = False,
        controls: list[Any] | None = None,
    ) -> SearchResult:
        request = pureldap.LDAPSearchRequest(
            baseObject=base.encode(),
            scope=scope,
            sizeLimit=size_limit,
            typesOnly=types_only,
            filter=parse_filter(filter_text),
            attributes=[a.encode() for a in attributes],
        )
        self.send(request, controls)
        return self.collect()

    def collect(self) -> SearchResult:
        *entries, done = self.responses()
        assert isinstance(done.value, pureldap.LDAPSearchResultDone)
        found = []
        for message in entries:
            assert isinstance(message.value, pureldap.LDAPSearchResultEntry)
            attributes = {
                name.decode(): [v.decode() for v in values]
                for name, values in message.value.attributes
            }
            found.append((message.value.objectName.decode(), attributes))
        controls = {oid.decode(): value for oid, _, value in done.controls or ()}
        return SearchResult(
            found,
            done.value.resultCode,
            done.value.errorMessage.decode(),
            done.value.matchedDN.decode(),
            controls,
        )
