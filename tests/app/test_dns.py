"""MX lookup against a twisted.names authoritative server on loopback (RFC 5321 §5.1, RFC 7505)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted

from tests.app.dns_support import a, mx, serve
from vpop3d.app.dns import DNSFailure, MXResolver, OverrideError, find_override, parse_overrides

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

RECORDS: dict[str, list[Any]] = {
    "example.test": [mx(20, "mx2.example.test"), mx(10, "mx1.example.test")],
    "mx1.example.test": [a("127.0.0.1")],
    "mx2.example.test": [a("127.0.0.2")],
    "plain.example.test": [a("127.0.0.3")],
    "nullmx.example.test": [mx(0, b"")],
}


@pytest.fixture
def resolver() -> Iterator[MXResolver]:
    from twisted.internet import reactor

    udp, tcp, port = serve(reactor, "example.test", RECORDS)
    yield MXResolver(reactor, [("127.0.0.1", port)], timeout=(2,))
    udp.stopListening()
    tcp.stopListening()


@ensure_deferred
async def test_mx_in_preference_order(resolver: MXResolver) -> None:
    """Lower preference first, each with its addresses."""
    hosts = await resolver.mx_hosts("example.test")
    assert [(h.name, h.preference, h.addresses) for h in hosts] == [
        ("mx1.example.test", 10, ("127.0.0.1",)),
        ("mx2.example.test", 20, ("127.0.0.2",)),
    ]


@ensure_deferred
async def test_no_mx_falls_back_to_address(resolver: MXResolver) -> None:
    """RFC 5321 §5.1: no MX record -> the domain's A record is the implicit MX."""
    hosts = await resolver.mx_hosts("plain.example.test")
    assert [(h.name, h.addresses) for h in hosts] == [("plain.example.test", ("127.0.0.3",))]


@ensure_deferred
async def test_null_mx_is_permanent(resolver: MXResolver) -> None:
    """RFC 7505: MX 0 "." means the domain accepts no mail: a permanent failure."""
    with pytest.raises(DNSFailure) as info:
        await resolver.mx_hosts("nullmx.example.test")
    assert info.value.permanent


@ensure_deferred
async def test_nxdomain_is_permanent(resolver: MXResolver) -> None:
    """A domain that does not exist fails at once rather than retrying for days."""
    with pytest.raises(DNSFailure) as info:
        await resolver.mx_hosts("nosuch.example.test")
    assert info.value.permanent


@ensure_deferred
async def test_override_replaces_mx(resolver: MXResolver) -> None:
    """seed-3 §13: a matching override is used without the real MX; $adddns appends them."""
    overrides = parse_overrides("example.test joe:pw@127.0.0.9:2526\n")
    (host,) = await resolver.route("example.test", overrides)
    assert (host.name, host.port, host.username, host.password) == (
        "127.0.0.9",
        2526,
        "joe",
        "pw",
    )
    hosts = await resolver.route("example.test", parse_overrides("* 127.0.0.9 $adddns"))
    assert [h.name for h in hosts] == ["127.0.0.9", "mx1.example.test", "mx2.example.test"]


def test_override_patterns_and_conditions() -> None:
    """*.example.com does not match example.com; $retries and $size gate a line."""
    overrides = parse_overrides(
        "# comment\n*.example.com a.test\n* big.test $size>1000000\n* late.test $retries>=3 $end\n"
    )
    assert find_override(overrides, "example.com") is None
    assert find_override(overrides, "x.example.com") == overrides[0]
    found = find_override(overrides, "other.org", size=2_000_000)
    assert found is not None
    assert found.host == "big.test"
    assert find_override(overrides, "other.org", retries=2) is None
    late = find_override(overrides, "other.org", retries=3)
    assert late is not None
    assert late.host == "late.test"
    with pytest.raises(OverrideError, match="line 1"):
        parse_overrides("example.com host $bogus")


@ensure_deferred
async def test_dnsmx_condition(resolver: MXResolver) -> None:
    """Check 41: $dnsmx:*.example.test matches the real MX names; $dnsmx:! inverts."""
    via = parse_overrides("* 127.0.0.9 $dnsmx:mx?.example.test")
    (host,) = await resolver.route("example.test", via)
    assert host.name == "127.0.0.9"
    hosts = await resolver.route(
        "example.test", parse_overrides("* 127.0.0.9 $dnsmx:!mx?.example.test")
    )
    assert [h.name for h in hosts] == ["mx1.example.test", "mx2.example.test"]
