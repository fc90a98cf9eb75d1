"""RFC 5321 mailbox and path parsing."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpop3d.core.address import (
    AddressError,
    Mailbox,
    normalise_domain,
    parse_mailbox,
    parse_path,
    quote_local,
)


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("fred@a.test", "fred", "a.test"),
        ("Fred.Bloggs@A.Test", "Fred.Bloggs", "a.test"),
        ("x+tag@mail.example.com", "x+tag", "mail.example.com"),
        ('"a@b"@example.com', "a@b", "example.com"),
        ('"john doe"@example.com', "john doe", "example.com"),
        ('"a\\"b"@example.com', 'a"b', "example.com"),
        ("x@[192.0.2.1]", "x", "[192.0.2.1]"),
        ("x@[IPv6:2001:DB8::1]", "x", "[IPv6:2001:db8::1]"),
        ("bill%microsoft.com@example.test", "bill%microsoft.com", "example.test"),
        ("a!b@example.test", "a!b", "example.test"),
    ],
)
def test_parse_mailbox_table(text: str, local: str, domain: str) -> None:
    """Valid mailboxes split into unquoted local part and canonical domain."""
    mailbox = parse_mailbox(text)
    assert (mailbox.local, mailbox.domain) == (local, domain)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fred",
        "@a.test",
        "fred@",
        "fred@@a.test",
        "a@b@c.test",
        ".fred@a.test",
        "fred.@a.test",
        "fr..ed@a.test",
        "fred@-a.test",
        "fred@a..test",
        "fred@a.test.",
        "fr ed@a.test",
        '"unterminated@a.test',
        "x@[300.1.1.1]",
        "x@[IPv6:zz::1]",
        "x@[1.2.3.4",
        "fred@a_b.test",
        "f\x00red@a.test",
        "x" * 65 + "@a.test",
        "fred@" + "a" * 64 + ".test",
    ],
)
def test_parse_mailbox_rejects(text: str) -> None:
    """Malformed mailboxes raise AddressError."""
    with pytest.raises(AddressError):
        parse_mailbox(text)


def test_utf8_local_part_needs_smtputf8() -> None:
    """Non-ASCII local parts are valid only with SMTPUTF8 (RFC 6531 §3.3)."""
    with pytest.raises(AddressError):
        parse_mailbox("jöran@a.test")
    mailbox = parse_mailbox("jöran@a.test", smtputf8=True)
    assert mailbox.local == "jöran"
    assert mailbox.needs_smtputf8


def test_idna_domain_becomes_a_label() -> None:
    """U-label domains are stored as IDNA A-labels (RFC 5890)."""
    mailbox = parse_mailbox("info@Bücher.example", smtputf8=True)
    assert mailbox.domain == "xn--bcher-kva.example"
    assert normalise_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"


def test_non_ascii_domain_needs_smtputf8() -> None:
    """A U-label domain without SMTPUTF8 is refused."""
    with pytest.raises(AddressError):
        parse_mailbox("info@bücher.example")


def test_key_is_caseless() -> None:
    """Local parts compare caselessly because user names do."""
    assert parse_mailbox("FRED@A.TEST").key == parse_mailbox("fred@a.test").key


def test_render_quotes_when_needed() -> None:
    """Rendering uses a Dot-string when possible and quotes otherwise."""
    assert str(Mailbox("fred", "a.test")) == "fred@a.test"
    assert str(Mailbox("a@b", "a.test")) == '"a@b"@a.test'
    assert quote_local('a"b') == '"a\\"b"'


def test_literal_ip() -> None:
    """Address literals expose their IP; domains do not."""
    assert parse_mailbox("x@[192.0.2.1]").literal_ip == ipaddress.IPv4Address("192.0.2.1")
    assert parse_mailbox("x@[IPv6:::1]").literal_ip == ipaddress.IPv6Address("::1")
    assert parse_mailbox("x@a.test").literal_ip is None


def test_null_path() -> None:
    """``<>`` is the null reverse-path."""
    path = parse_path("<>")
    assert path.is_null
    assert str(path) == "<>"


def test_source_route_is_ignored() -> None:
    """``<@a,@b:x@y>`` delivers to x@y; the route is kept only for logs."""
    path = parse_path("<@relay.one,@relay.two:joe@remote.test>")
    assert path.mailbox == Mailbox("joe", "remote.test")
    assert path.route == ("relay.one", "relay.two")


@pytest.mark.parametrize("text", ["joe@a.test", "<joe@a.test", "<@a:>", "<@:x@y.test>"])
def test_bad_paths(text: str) -> None:
    """Paths need brackets and a well-formed route."""
    with pytest.raises(AddressError):
        parse_path(text)


def test_postmaster_without_domain() -> None:
    """``<Postmaster>`` takes the given domain (RFC 5321 §4.5.1), else is refused."""
    assert parse_path("<Postmaster>", postmaster_domain="a.test").mailbox == Mailbox(
        "postmaster", "a.test"
    )
    with pytest.raises(AddressError):
        parse_path("<postmaster>")


@given(st.text(max_size=80))
def test_parse_path_raises_only_address_error(text: str) -> None:
    """Any text either parses or raises AddressError, never anything else."""
    for candidate in (text, f"<{text}>"):
        for utf8 in (False, True):
            with contextlib.suppress(AddressError):
                parse_path(candidate, smtputf8=utf8)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_parse_mailbox_raises_only_address_error(text: str) -> None:
    """parse_mailbox never raises anything but AddressError."""
    with contextlib.suppress(AddressError):
        parse_mailbox(text, smtputf8=True)


_ATOM = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=10
)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(
    st.one_of(
        st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    ),
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
)
def test_render_round_trips(local: str, domain: str) -> None:
    """str(mailbox) parses back to the same mailbox."""
    mailbox = Mailbox(local, domain)
    if len(quote_local(local)) > 64:
        return
    assert parse_mailbox(str(mailbox)) == mailbox
