"""Pure directory logic behind the LDAP service: DNs, scopes, filters, sorting."""

from __future__ import annotations

import pytest

from tests.proto.ldap_harness import FakeEntry, person
from vpop3d.proto.directory import (
    And,
    Equal,
    InvalidDN,
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

FRED = person("uid=fred,OU=Users,O=VPOP3", "Fred Bloggs", "fred@example.test", "fred")


def test_dn_comparison_ignores_case_and_spaces() -> None:
    """RFC 4514 DNs compare case-insensitively, spaces around separators ignored."""
    assert normalise_dn("UID=Fred , ou=users,O=VPOP3") == normalise_dn("uid=fred,OU=Users,o=vpop3")
    assert normalise_dn("") == ()


def test_dn_escapes_are_decoded() -> None:
    """Escaped commas and hex pairs belong to the value (RFC 4514 §2.4)."""
    assert normalise_dn(r"cn=Bloggs\, Fred,o=x") == ((("cn", "bloggs, fred"),), (("o", "x"),))
    assert normalise_dn(r"cn=caf\c3\a9,o=x")[0] == (("cn", "café"),)


@pytest.mark.parametrize("text", ["no equals", "=value", "cn=x,", "cn=x\\"])
def test_invalid_dns(text: str) -> None:
    """Text that is not a DN raises InvalidDN."""
    with pytest.raises(InvalidDN):
        normalise_dn(text)


def test_scopes() -> None:
    """base is the entry itself, one its children, sub the whole subtree."""
    base = normalise_dn("ou=users,o=vpop3")
    child = normalise_dn("uid=a,ou=users,o=vpop3")
    other = normalise_dn("uid=a,ou=external,o=vpop3")
    assert in_scope(base, base, Scope.BASE)
    assert not in_scope(child, base, Scope.BASE)
    assert in_scope(child, base, Scope.ONE)
    assert not in_scope(base, base, Scope.ONE)
    assert in_scope(base, base, Scope.SUB)
    assert in_scope(child, base, Scope.SUB)
    assert not in_scope(other, base, Scope.SUB)
    assert in_scope(other, (), Scope.SUB)


def test_filter_logic_is_three_valued() -> None:
    """Undefined (extensibleMatch) stays undefined under NOT; AND/OR follow RFC 4511."""
    assert matches(Unsupported("x"), FRED) is None
    assert matches(Not(Unsupported("x")), FRED) is None
    assert matches(And((Unsupported("x"), Equal("uid", "nobody"))), FRED) is False
    assert matches(Or((Unsupported("x"), Equal("uid", "FRED"))), FRED) is True
    assert matches(Present("MAIL"), FRED) is True


def test_substring_pieces_must_not_overlap() -> None:
    """initial/any/final match in order without reusing characters."""
    assert matches(Substrings("uid", "fr", ("e",), "d"), FRED) is True
    assert matches(Substrings("uid", "fre", (), "ed"), FRED) is False


def test_select_attributes_star_and_names() -> None:
    """``*`` and an empty list give everything; names are case-insensitive."""
    everything = select_attributes(FRED, [])
    assert [name for name, _ in everything] == ["objectClass", "cn", "mail", "uid"]
    assert select_attributes(FRED, ["*"]) == everything
    assert select_attributes(FRED, ["CN"]) == [("cn", ("Fred Bloggs",))]


def test_sort_puts_entries_without_the_attribute_last() -> None:
    """RFC 2891: entries missing the sort attribute come after the others."""
    nameless = FakeEntry("uid=z,o=x", {"uid": ("z",)})
    entries = [nameless, FRED, person("uid=a,o=x", "alice", "a@x", "a")]
    ordered = sort_entries(entries, [SortKey("cn")])
    assert [e.dn for e in ordered] == ["uid=a,o=x", FRED.dn, "uid=z,o=x"]
