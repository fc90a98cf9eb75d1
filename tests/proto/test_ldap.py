"""The LDAP server protocol over StringTransport: binds, searches, controls, refusals."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldaptor.protocols import pureldap

from tests.proto.ldap_harness import (
    FakeDirectory,
    Harness,
    decode_all,
    paged_control,
    paged_cookie,
    parse_filter,
    sort_control,
)
from vpop3d.proto.ldap import LDAPConfig, ProtocolViolation, decode_message, encode_entry

FRED = "uid=fred,OU=Users,O=VPOP3"
PEOPLE = "(objectClass=inetOrgPerson)"


# --------------------------------------------------------------------------- bind


def test_anonymous_bind_succeeds() -> None:
    """An empty name and password is an anonymous bind (RFC 4513 §5.1.1)."""
    h = Harness()
    response = h.bind()
    assert isinstance(response, pureldap.LDAPBindResponse)
    assert response.resultCode == 0
    assert h.whoami() == b""


def test_simple_bind_with_user_dn_checks_the_local_user() -> None:
    """A bind to a user's entry DN authenticates that user's login name."""
    h = Harness()
    assert h.bind("UID=Fred, ou=users,o=vpop3", "pw-fred").resultCode == 0
    assert h.auth.seen[0][0] == "fred"
    assert h.auth.seen[0][1].service == "ldap"
    assert h.auth.seen[0][1].peer_ip == "192.0.2.7"
    assert h.whoami() == b"u:fred"


def test_simple_bind_with_plain_address_is_passed_through() -> None:
    """A bind name that is not a DN is used as the login (fred@example.test)."""
    h = Harness()
    assert h.bind("fred@example.test", "pw-fred").resultCode == 0
    assert h.auth.seen[0][0] == "fred@example.test"


def test_wrong_password_gives_invalid_credentials_and_leaves_anonymous() -> None:
    """A failed bind answers 49 and the connection is anonymous afterwards."""
    h = Harness()
    assert h.bind(FRED, "pw-fred").resultCode == 0
    assert h.bind(FRED, "wrong").resultCode == 49
    assert h.whoami() == b""


def test_bind_to_unknown_dn_fails_without_asking_the_authenticator() -> None:
    """A DN naming no user entry is invalidCredentials; external entries cannot bind."""
    h = Harness()
    assert h.bind("uid=nobody,OU=Users,O=VPOP3", "x").resultCode == 49
    assert h.bind("uid=ext-1,OU=External,O=VPOP3", "x").resultCode == 49
    assert h.bind("not a=dn=,,", "x").resultCode == 49
    assert h.auth.seen == []


def test_unauthenticated_bind_is_refused() -> None:
    """A name with an empty password is refused (RFC 4513 §5.1.2)."""
    assert Harness().bind(FRED, "").resultCode == 53


def test_sasl_bind_is_not_supported() -> None:
    """SASL binds answer authMethodNotSupported (7)."""
    h = Harness()
    request = pureldap.LDAPBindRequest(dn=b"", auth=(b"EXTERNAL", None), sasl=True)
    assert h.result(request).resultCode == 7


def test_bind_version_1_is_a_protocol_error() -> None:
    """Only LDAP v2/v3 binds are accepted."""
    h = Harness()
    assert h.result(pureldap.LDAPBindRequest(version=1, dn=b"", auth=b"")).resultCode == 2


# --------------------------------------------------------------------------- search


def test_search_o_vpop3_with_substring_filter_finds_users_and_external_entries() -> None:
    """(cn=Fred*) under O=VPOP3 returns the matching user and external entry."""
    result = Harness().search("O=VPOP3", "(cn=Fred*)")
    assert result.code == 0
    assert result.dns == [FRED, "uid=ext-1,OU=External,O=VPOP3"]
    _, attributes = result.entries[0]
    assert attributes["mail"] == ["fred@example.test"]
    assert attributes["cn"] == ["Fred Bloggs"]
    assert "inetOrgPerson" in attributes["objectClass"]


def test_blank_base_covers_everything() -> None:
    """A blank base with subtree scope searches the whole tree (manual L1684)."""
    result = Harness().search("", PEOPLE)
    assert len(result.dns) == 5


def test_external_branch_returns_only_external_entries() -> None:
    """OU=External,O=VPOP3 holds only externally added entries."""
    result = Harness().search("OU=External,O=VPOP3", PEOPLE)
    assert result.dns == ["uid=ext-1,OU=External,O=VPOP3", "uid=ext-2,OU=External,O=VPOP3"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (0, ["OU=Users,O=VPOP3"]),
        (1, [FRED, "uid=alice,OU=Users,O=VPOP3", "uid=bob,OU=Users,O=VPOP3"]),
        (2, ["OU=Users,O=VPOP3", FRED, "uid=alice,OU=Users,O=VPOP3", "uid=bob,OU=Users,O=VPOP3"]),
    ],
)
def test_scopes(scope: int, expected: list[str]) -> None:
    """base, one and subtree scopes (RFC 4511 §4.5.1.2)."""
    assert Harness().search("ou=users,o=vpop3", scope=scope).dns == expected


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("(mail=ALICE@example.test)", ["alice"]),
        ("(mail=*@other.test)", ["ext-1", "ext-2"]),
        ("(cn=*ed*)", ["fred", "ext-1", "ext-2"]),
        ("(cn=F*d*l)", ["ext-1"]),
        ("(&(cn=Fred*)(uid=fred))", ["fred"]),
        ("(|(uid=bob)(uid=alice))", ["alice", "bob"]),
        ("(&(objectClass=person)(!(mail=*@other.test)))", ["fred", "alice", "bob"]),
        ("(uid>=f)", ["fred"]),
        ("(uid<=b)", ["alice"]),
        ("(uid~=BOB)", ["bob"]),
        ("(telephoneNumber=*)", []),
        ("(!(telephoneNumber=1))", ["fred", "alice", "bob", "ext-1", "ext-2"]),
    ],
)
def test_filters(filter_text: str, expected: list[str]) -> None:
    """Equality, substrings, present, ordering and boolean filters, case-insensitively."""
    result = Harness().search("O=VPOP3", f"(&{PEOPLE}{filter_text})", attributes=["uid"])
    assert [attrs["uid"][0] for _, attrs in result.entries] == expected


def test_requested_attributes_only() -> None:
    """An attribute list restricts what comes back (manual L7311)."""
    result = Harness().search("O=VPOP3", "(uid=fred)", attributes=["MAIL"])
    assert result.entries == [(FRED, {"mail": ["fred@example.test"]})]


def test_no_attributes_with_1_1_and_types_only() -> None:
    """``1.1`` returns no attributes; typesOnly returns names without values."""
    h = Harness()
    assert h.search("O=VPOP3", "(uid=fred)", attributes=["1.1"]).entries == [(FRED, {})]
    result = h.search("O=VPOP3", "(uid=fred)", attributes=["cn", "mail"], types_only=True)
    assert result.entries == [(FRED, {"cn": [], "mail": []})]


def test_client_size_limit_truncates_and_says_so() -> None:
    """More matches than sizeLimit: that many entries, then sizeLimitExceeded (4)."""
    result = Harness().search("O=VPOP3", PEOPLE, size_limit=2)
    assert len(result.entries) == 2
    assert result.code == 4


def test_server_size_limit_applies_without_paging() -> None:
    """The server's own limit caps unpaged searches."""
    result = Harness(LDAPConfig(max_results=3)).search("O=VPOP3", PEOPLE)
    assert len(result.entries) == 3
    assert result.code == 4


def test_unknown_base_is_no_such_object_with_matched_dn() -> None:
    """A missing base answers noSuchObject and names the closest existing entry."""
    result = Harness().search("uid=nobody,OU=Users,O=VPOP3")
    assert result.code == 32
    assert result.matched == "OU=Users,O=VPOP3"


def test_invalid_base_dn_syntax() -> None:
    """A base that is not a DN answers invalidDNSyntax (34)."""
    assert Harness().search("no equals sign").code == 34


def test_root_dse_lists_naming_context_and_controls() -> None:
    """A base-scope search of "" returns the root DSE (RFC 4512 §5.1)."""
    result = Harness().search("", scope=0)
    assert result.code == 0
    (dn, attributes) = result.entries[0]
    assert dn == ""
    assert attributes["namingContexts"] == ["O=VPOP3"]
    assert "1.2.840.113556.1.4.319" in attributes["supportedControl"]
    assert attributes["supportedLDAPVersion"] == ["3"]


# --------------------------------------------------------------------------- controls


def test_paged_results_return_pages_with_cookies() -> None:
    """RFC 2696: pages of 2 over 5 entries, a cookie for each next page, "" at the end."""
    h = Harness()
    seen: list[str] = []
    cookie = b""
    pages = 0
    while True:
        result = h.search("O=VPOP3", PEOPLE, controls=[paged_control(2, cookie)])
        assert result.code == 0
        pages += 1
        assert len(result.entries) <= 2
        seen += result.dns
        total, cookie = paged_cookie(result.controls["1.2.840.113556.1.4.319"])
        assert total == 5
        if not cookie:
            break
    assert pages == 3
    assert len(seen) == 5
    assert len(set(seen)) == 5


def test_paged_results_reject_a_foreign_cookie() -> None:
    """A cookie this connection did not hand out is refused."""
    result = Harness().search("O=VPOP3", PEOPLE, controls=[paged_control(2, b"42")])
    assert result.code == 53


def test_paged_results_cookie_must_belong_to_the_same_search() -> None:
    """A cookie reused with another filter is refused."""
    h = Harness()
    first = h.search("O=VPOP3", PEOPLE, controls=[paged_control(2)])
    _, cookie = paged_cookie(first.controls["1.2.840.113556.1.4.319"])
    assert h.search("O=VPOP3", "(cn=*)", controls=[paged_control(2, cookie)]).code == 53


def test_paged_results_size_zero_abandons() -> None:
    """Size 0 with a cookie ends the paged search: no entries, empty cookie."""
    h = Harness()
    first = h.search("O=VPOP3", PEOPLE, controls=[paged_control(2)])
    _, cookie = paged_cookie(first.controls["1.2.840.113556.1.4.319"])
    result = h.search("O=VPOP3", PEOPLE, controls=[paged_control(0, cookie)])
    assert result.entries == []
    assert paged_cookie(result.controls["1.2.840.113556.1.4.319"])[1] == b""
    assert h.search("O=VPOP3", PEOPLE, controls=[paged_control(2, cookie)]).code == 53


def test_paged_results_are_not_capped_by_the_server_limit() -> None:
    """Paging is how a client browses the whole book (manual L1676-1680)."""
    result = Harness(LDAPConfig(max_results=1)).search(
        "O=VPOP3", PEOPLE, controls=[paged_control(10)]
    )
    assert len(result.entries) == 5
    assert result.code == 0


def test_server_side_sort() -> None:
    """RFC 2891: entries sorted by cn, reversed on request, with a sortResult control."""
    h = Harness()
    result = h.search("O=VPOP3", PEOPLE, attributes=["cn"], controls=[sort_control("cn")])
    names = [attrs["cn"][0] for _, attrs in result.entries]
    assert names == ["Alice Smith", "bob", "Fred Bloggs", "Fred External", "Zed Zulu"]
    assert "1.2.840.113556.1.4.474" in result.controls
    result = h.search(
        "O=VPOP3", PEOPLE, attributes=["cn"], controls=[sort_control("cn", reverse=True)]
    )
    assert [attrs["cn"][0] for _, attrs in result.entries] == list(reversed(names))


def test_unknown_critical_control_is_refused_and_noncritical_ignored() -> None:
    """RFC 4511 §4.1.11: unavailableCriticalExtension (12) only when critical."""
    h = Harness()
    result = h.search("O=VPOP3", controls=[(b"1.2.3.4", True, None)])
    assert result.code == 12
    assert h.search("O=VPOP3", "(uid=fred)", controls=[(b"1.2.3.4", False, None)]).code == 0


def test_malformed_paged_control_is_a_protocol_error() -> None:
    """A paged-results control value that is not the RFC 2696 SEQUENCE is rejected."""
    result = Harness().search("O=VPOP3", controls=[(b"1.2.840.113556.1.4.319", True, b"\x01")])
    assert result.code == 2


# --------------------------------------------------------------------------- read-only


@pytest.mark.parametrize(
    ("request_op", "response_type"),
    [
        (
            pureldap.LDAPAddRequest(
                entry=b"uid=x,OU=External,O=VPOP3",
                attributes=[
                    (
                        pureldap.LDAPAttributeDescription(b"cn"),
                        pureldap.BERSet([pureldap.LDAPAttributeValue(b"x")]),
                    )
                ],
            ),
            pureldap.LDAPAddResponse,
        ),
        (
            pureldap.LDAPModifyRequest(object=FRED.encode(), modification=[]),
            pureldap.LDAPModifyResponse,
        ),
        (pureldap.LDAPDelRequest(entry=FRED.encode()), pureldap.LDAPDelResponse),
        (
            pureldap.LDAPModifyDNRequest(entry=FRED.encode(), newrdn=b"uid=f", deleteoldrdn=True),
            pureldap.LDAPModifyDNResponse,
        ),
    ],
)
def test_write_operations_are_refused(request_op: Any, response_type: type[Any]) -> None:
    """add/modify/delete/modrdn answer unwillingToPerform (53) (manual L7295)."""
    h = Harness()
    assert h.bind(FRED, "pw-fred").resultCode == 0
    response = h.result(request_op)
    assert isinstance(response, response_type)
    assert response.resultCode == 53
    assert b"read-only" in response.errorMessage


def test_compare() -> None:
    """Compare answers compareTrue/compareFalse/noSuchAttribute/noSuchObject."""
    h = Harness()

    def compare(dn: str, attribute: str, value: str) -> int:
        ava = pureldap.LDAPAttributeValueAssertion(
            pureldap.BEROctetString(attribute.encode()), pureldap.BEROctetString(value.encode())
        )
        response = h.result(pureldap.LDAPCompareRequest(entry=dn.encode(), ava=ava))
        assert isinstance(response, pureldap.LDAPCompareResponse)
        return int(response.resultCode)

    assert compare(FRED, "mail", "FRED@example.test") == 6
    assert compare(FRED, "mail", "other@example.test") == 5
    assert compare(FRED, "telephoneNumber", "1") == 16
    assert compare("uid=x,O=VPOP3", "cn", "x") == 32


def test_start_tls_switches_the_transport_and_drops_pipelined_bytes() -> None:
    """RFC 4511 §4.14: success with the StartTLS OID, then the TLS handshake; bytes
    sent behind the request in plaintext are not executed."""
    h = Harness(tls=True)
    start = h.encode(pureldap.LDAPExtendedRequest(b"1.3.6.1.4.1.1466.20037"))
    injected = h.encode(pureldap.LDAPDelRequest(entry=FRED.encode()))
    h.protocol.dataReceived(start + injected)
    (message,) = h.responses()
    assert message.value.resultCode == 0
    assert message.value.responseName == b"1.3.6.1.4.1.1466.20037"
    assert h.transport.tls_started
    assert h.bind(FRED, "pw-fred").resultCode == 0
    assert h.auth.seen[0][1].secure
    again = h.result(pureldap.LDAPExtendedRequest(b"1.3.6.1.4.1.1466.20037"))
    assert again.resultCode == 1


def test_start_tls_without_certificates_is_not_offered() -> None:
    """No TLS configured: StartTLS is an unknown extended operation."""
    h = Harness()
    assert h.result(pureldap.LDAPExtendedRequest(b"1.3.6.1.4.1.1466.20037")).resultCode == 2
    assert not h.transport.tls_started
    (_, attributes) = h.search("", scope=0).entries[0]
    assert attributes["supportedExtension"] == ["1.3.6.1.4.1.4203.1.11.3"]


def test_unknown_extended_operation_is_a_protocol_error() -> None:
    """RFC 4511 §4.12: an unrecognised extended request answers protocolError."""
    response = Harness().result(pureldap.LDAPExtendedRequest(b"1.2.3.4.5"))
    assert isinstance(response, pureldap.LDAPExtendedResponse)
    assert response.resultCode == 2


# --------------------------------------------------------------------------- access


def test_require_auth_refuses_anonymous_search_but_not_root_dse() -> None:
    """With authentication required, bind first; the root DSE stays readable."""
    h = Harness(LDAPConfig(require_auth=True))
    assert h.search("O=VPOP3", PEOPLE).code == 50
    assert h.search("", scope=0).code == 0
    assert h.bind(FRED, "pw-fred").resultCode == 0
    assert len(h.search("O=VPOP3", PEOPLE).entries) == 5


# --------------------------------------------------------------------------- connection


def test_requests_are_answered_in_order_one_at_a_time() -> None:
    """Two pipelined searches: the second starts only after the first answered."""
    directory = FakeDirectory(hold=True)
    h = Harness(directory=directory)
    first = pureldap.LDAPSearchRequest(baseObject=b"O=VPOP3", filter=parse_filter("(uid=fred)"))
    second = pureldap.LDAPSearchRequest(baseObject=b"O=VPOP3", filter=parse_filter("(uid=bob)"))
    h.protocol.dataReceived(h.encode(first) + h.encode(second))
    assert directory.calls == 1
    assert h.transport.producerState == "paused"
    directory.held[0].callback(list(directory.entries_list))
    messages = decode_all(h.transport.value())
    assert [m.id for m in messages] == [1, 1]
    assert directory.calls == 2
    directory.held[1].callback(list(directory.entries_list))
    messages = decode_all(h.transport.value())
    assert [m.id for m in messages] == [1, 1, 2, 2]
    assert messages[2].value.objectName == b"uid=bob,OU=Users,O=VPOP3"
    assert h.transport.producerState == "producing"


def test_request_split_into_single_bytes_is_reassembled() -> None:
    """A PDU arriving one octet at a time is decoded once complete."""
    h = Harness()
    wire = h.encode(pureldap.LDAPBindRequest(dn=b"", auth=b""))
    for index in range(len(wire)):
        h.protocol.dataReceived(wire[index : index + 1])
    (message,) = h.responses()
    assert message.value.resultCode == 0


def test_directory_failure_is_a_temporary_error_and_the_session_goes_on() -> None:
    """Our own fault answers unavailable (52), never a permanent code."""
    h = Harness(directory=FakeDirectory(broken=True))
    assert h.search("O=VPOP3").code == 52
    assert h.bind().resultCode == 0


def test_garbage_gets_a_notice_of_disconnection() -> None:
    """Undecodable input: RFC 4511 §4.4.1 notice (message ID 0), then close."""
    h = Harness()
    h.protocol.dataReceived(b"\x04\x03abc")
    (message,) = h.responses()
    assert message.id == 0
    assert message.value.resultCode == 2
    assert message.value.responseName == b"1.3.6.1.4.1.1466.20036"
    assert h.transport.disconnecting


def test_oversized_request_closes_the_connection() -> None:
    """A PDU claiming more than the request limit is not buffered forever."""
    h = Harness(LDAPConfig(max_request_size=100))
    h.protocol.dataReceived(b"\x30\x82\x10\x00" + b"\x00" * 200)
    assert h.transport.disconnecting


def test_unbind_closes_without_a_response() -> None:
    """RFC 4511 §4.3: the server closes after an unbind and sends nothing."""
    h = Harness()
    h.send(pureldap.LDAPUnbindRequest())
    assert h.transport.value() == b""
    assert h.transport.disconnecting


def test_idle_connection_is_closed() -> None:
    """No request for idle_timeout seconds: the server closes the connection."""
    h = Harness(LDAPConfig(idle_timeout=30))
    h.clock.advance(29)
    assert not h.transport.disconnecting
    h.bind()
    h.clock.advance(29)
    assert not h.transport.disconnecting
    h.clock.advance(2)
    assert h.transport.disconnecting


@pytest.mark.parametrize("size", [0, 100, 127, 128, 300, 70_000])
def test_entry_encoding_round_trips_through_a_generic_decoder(size: int) -> None:
    """Our direct SearchResultEntry encoding decodes (short and long BER lengths)."""
    value = "é" * size
    wire = encode_entry(2_000_000_000, "uid=x,O=VPOP3", [("cn", [value, "b"]), ("mail", [])])
    (message,) = decode_all(wire)
    assert message.id == 2_000_000_000
    assert message.value.objectName == b"uid=x,O=VPOP3"
    assert message.value.attributes == [(b"cn", [value.encode(), b"b"]), (b"mail", [])]


_SEQUENCES = st.binary(max_size=300).map(lambda tail: b"\x30" + tail)


@given(st.one_of(st.binary(max_size=300), _SEQUENCES))
@settings(max_examples=500, deadline=None)
def test_decoder_only_raises_protocol_violation(data: bytes) -> None:
    """Arbitrary bytes decode, wait for more, or raise ProtocolViolation: nothing else."""
    with contextlib.suppress(ProtocolViolation):
        decode_message(data)


@given(st.lists(st.one_of(st.binary(max_size=40), _SEQUENCES), max_size=5))
@settings(max_examples=200, deadline=None)
def test_garbage_never_crashes_the_connection(chunks: list[bytes]) -> None:
    """Whatever arrives, the server answers with decodable PDUs or closes."""
    h = Harness()
    prefix = h.encode(pureldap.LDAPBindRequest(dn=b"", auth=b""))
    for chunk in [prefix, *chunks]:
        h.protocol.dataReceived(chunk)
    messages = decode_all(h.transport.value())
    assert messages[0].value.resultCode == 0
