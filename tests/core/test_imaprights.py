"""RFC 4314 rights letters, SETACL changes and identifiers."""

from __future__ import annotations

import pytest

from vpop3d.core import imaprights
from vpop3d.core.imaprights import Identifier


def test_normalise_orders_and_dedupes() -> None:
    """Rights come back once each, in RFC 4314 §2.1 order."""
    assert imaprights.normalise("arlrl") == "lra"
    assert imaprights.normalise("") == ""


def test_obsolete_rights_expand() -> None:
    """RFC 4314 §2.1.1: "c" means "kx" and "d" means "et" here."""
    assert imaprights.normalise("c") == "kx"
    assert imaprights.normalise("d") == "te"
    assert imaprights.normalise("lrcd") == "lrkxte"


@pytest.mark.parametrize("text", ["lrz", "1", "L", " "])
def test_unknown_right_is_an_error(text: str) -> None:
    """RFC 4314 §3.1: unknown rights (and implementation digits) are refused."""
    with pytest.raises(imaprights.RightsError):
        imaprights.normalise(text)


def test_display_adds_obsolete_letters_when_fully_held() -> None:
    """GETACL/MYRIGHTS show "c" with both "k" and "x", "d" with both "e" and "t"."""
    assert imaprights.display(imaprights.ALL) == "lrswipkxteacd"
    assert imaprights.display("lrk") == "lrk"
    assert imaprights.display("lrte") == "lrted"


def test_change_add_remove_replace() -> None:
    """SETACL "+x" adds, "-x" removes, a bare string replaces (RFC 4314 §3.1)."""
    assert imaprights.parse_change("+ws").apply("lr") == "lrsw"
    assert imaprights.parse_change("-rw").apply("lrsw") == "ls"
    assert imaprights.parse_change("lr").apply("lrswa") == "lr"
    assert imaprights.parse_change("-").apply("lr") == "lr"
    assert imaprights.parse_change("+d").apply("l") == "lte"


def test_change_with_unknown_right_fails() -> None:
    """A bad letter anywhere in a change refuses the whole change."""
    with pytest.raises(imaprights.RightsError):
        imaprights.parse_change("+lq")


def test_union() -> None:
    """Rights from several identifiers add up."""
    assert imaprights.union("lr", "rs", "") == "lrs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob", Identifier("user", "bob")),
        ("Bob@example.test", Identifier("user", "bob")),
        ("anyone", Identifier("anyone")),
        ("ANYONE", Identifier("anyone")),
        ("group:sales", Identifier("group", "sales")),
    ],
)
def test_parse_identifier(text: str, expected: Identifier) -> None:
    """User names as-is (domain dropped), group:<name>, anyone."""
    assert imaprights.parse_identifier(text) == expected


@pytest.mark.parametrize("text", ["", "-bob", "group:", "a b", "x/y"])
def test_bad_identifiers(text: str) -> None:
    """Negative rights, empty names and odd characters are refused."""
    with pytest.raises(imaprights.IdentifierError):
        imaprights.parse_identifier(text)


def test_identifier_render_round_trips() -> None:
    """Rendering gives back what the parser accepts."""
    for who in (Identifier("user", "bob"), Identifier("group", "sales"), Identifier("anyone")):
        assert imaprights.parse_identifier(who.render()) == who


def test_read_only_without_write_rights() -> None:
    """SELECT is READ-ONLY unless s, w, t or e is held."""
    assert imaprights.read_only("lr")
    assert imaprights.read_only("lrika")
    assert not imaprights.read_only("lrs")
    assert not imaprights.read_only("lre")


def test_flag_rights() -> None:
    """\\Seen needs s, \\Deleted needs t, anything else w (RFC 4314 §4 STORE)."""
    assert imaprights.right_for_flag("\\Seen") == "s"
    assert imaprights.right_for_flag("\\Deleted") == "t"
    assert imaprights.right_for_flag("\\Flagged") == "w"
    assert imaprights.right_for_flag("$Label1") == "w"
    flags = frozenset({"\\Seen", "\\Deleted", "\\Flagged"})
    assert imaprights.storable(flags, "lrs") == {"\\Seen"}
    assert imaprights.storable(flags, "lrswt") == flags
