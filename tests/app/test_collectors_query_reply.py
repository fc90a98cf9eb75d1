"""Download on reply to a Download query notice (seed-3 §4.6) over the real store:
the notice's Reply-To, the SMTP hook that takes the reply (local senders only, an
unguessable token), the Get flag it sets, and the reply going into no mailbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from tests.app.delivery_support import LAN_IP, World, envelope, make_world, result
from tests.app.test_delivery import inbox, queued, refusal, send
from tests.support.stack import Stack
from vpop3d.app.collectornotices import CollectorNotices
from vpop3d.app.collectorquery import (
    QUERY_SECRET,
    ensure_secret,
    parse_local_part,
    reply_local_part,
)
from vpop3d.app.collectors import _reply_domain
from vpop3d.core.mapping import LocalDomains
from vpop3d.store import collectors as repo
from vpop3d.store import settings as settings_repo

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

HEAD = b"From: boss@remote.test\r\nTo: fred@a.test\r\nSubject: Big file\r\n\r\n"
REPLY = b"From: fred@a.test\r\nSubject: Re: Download query: Big file\r\n\r\nyes please\r\n"


@pytest.fixture
def world(stack: Stack) -> World:
    stack.add_domain("a.test")
    stack.add_user("fred")
    return make_world(stack)


def _queried(world: World, *keys: str) -> int:
    """A collector with ``keys`` awaiting a query decision."""
    cid = world.db.run_sync(repo.add, "isp", server="pop.isp.test")
    world.db.run_sync(repo.see, cid, list(keys), 1.7e9)
    for key in keys:
        world.db.run_sync(repo.set_disposition, cid, key, "queried")
    return int(cid)


def _get_flag(world: World, cid: int, key: str) -> bool:
    return bool(world.db.read_sync(repo.uidls, cid)[key]["get_flag"])


async def _notice(world: World, cid: int, key: str) -> tuple[bytes, str]:
    """Send the query notice to fred through the real delivery; (notice, reply address)."""
    notices = CollectorNotices(
        world.delivery, world.db, world.stack.blobs, "mx.example.test",
        local_domains=LocalDomains.parse("a.test"), collector_id=cid, reply_domain="a.test",
    )  # fmt: skip
    config = SimpleNamespace(id=cid, name="isp")
    await notices.query(config, key, HEAD, ["fred@a.test"], "ask", 14, 1.7e9)
    [notice] = inbox(world, "fred")
    found = re.search(rb"\r\nReply-To: <([^>]+)>\r\n", notice)
    assert found is not None, notice
    return notice, found.group(1).decode()


def test_local_part_round_trip_and_strict_shape() -> None:
    """The reply local part parses back to (collector, mac); other shapes do not."""
    local = reply_local_part("k" * 64, 7, "uid-1")
    ident, mac = cast(tuple[int, str], parse_local_part(local))
    assert ident == 7
    assert len(mac) == 24
    assert parse_local_part(local.upper()) == (7, mac)
    for bad in ("query-7", "query-0-" + mac, "query-7-" + mac[:-1], "xquery-7-" + mac,
                "query-99999999999-" + mac, "query-7-" + mac + "0"):  # fmt: skip
        assert parse_local_part(bad) is None, bad


def test_secret_is_made_once(world: World) -> None:
    """The HMAC key is created on first use and then kept."""
    first = world.db.run_sync(ensure_secret)
    assert len(first) == 64
    assert world.db.run_sync(ensure_secret) == first
    assert world.db.read_sync(settings_repo.get, QUERY_SECRET) == first


@ensure_deferred
async def test_notice_names_a_reply_address_and_the_token(world: World) -> None:
    """The notice's Reply-To is query-<id>-<mac>@<local domain>; X-VPOP3-Query
    carries id:uidl:mac (seed-3 §4.6) and the text says a reply downloads it."""
    cid = _queried(world, "uid-1")
    notice, address = await _notice(world, cid, "uid-1")
    local, _at, domain = address.partition("@")
    assert domain == "a.test"
    parsed = parse_local_part(local)
    assert parsed is not None
    assert parsed[0] == cid
    assert f"X-VPOP3-Query: {cid}:uid-1:{parsed[1]}\r\n".encode() in notice
    assert b"reply to this message" in notice


@ensure_deferred
async def test_authenticated_reply_sets_get_and_is_not_delivered(world: World) -> None:
    """fred replies over authenticated SMTP: the Get flag is set (as the Download
    button does), the reply reaches no mailbox and nothing is queued."""
    cid = _queried(world, "uid-1", "uid-2")
    _notice_body, address = await _notice(world, cid, "uid-1")
    send(world, world.context(user="fred"), "fred@a.test", address, body=REPLY)
    assert _get_flag(world, cid, "uid-1")
    assert not _get_flag(world, cid, "uid-2")
    assert len(inbox(world, "fred")) == 1  # only the notice
    assert queued(world) == []


@ensure_deferred
async def test_lan_client_with_local_sender_counts(world: World) -> None:
    """An unauthenticated client on the LAN whose MAIL FROM is local counts."""
    cid = _queried(world, "uid-1")
    _notice_body, address = await _notice(world, cid, "uid-1")
    send(world, world.context(LAN_IP), "fred@a.test", address, body=REPLY)
    assert _get_flag(world, cid, "uid-1")


@ensure_deferred
async def test_strangers_are_refused_and_change_nothing(world: World) -> None:
    """From the Internet unauthenticated, or from the LAN with a foreign MAIL FROM,
    the reply address is refused with 5.7.1 and the flag stays clear."""
    cid = _queried(world, "uid-1")
    _notice_body, address = await _notice(world, cid, "uid-1")
    for context, sender in ((world.context(), "fred@a.test"),
                            (world.context(LAN_IP), "x@remote.test")):  # fmt: skip
        reply = refusal(world, context, envelope(sender), address)
        assert reply is not None
        assert (reply.code, reply.enhanced) == (550, "5.7.1")
    assert not _get_flag(world, cid, "uid-1")


@ensure_deferred
async def test_guessed_or_stale_tokens_look_like_unknown_users(world: World) -> None:
    """A wrong MAC, another collector's id, or a message no longer awaiting a decision:
    550 5.1.1 even to an authenticated user, and no flag changes."""
    cid = _queried(world, "uid-1")
    _notice_body, address = await _notice(world, cid, "uid-1")
    local, _at, _domain = address.partition("@")
    ident, mac = cast(tuple[int, str], parse_local_part(local))
    wrong = "0" * 24 if mac != "0" * 24 else "1" * 24
    fred = world.context(user="fred")
    candidates = [f"query-{ident}-{wrong}@a.test", f"query-{ident + 1}-{mac}@a.test"]
    for rcpt in candidates:
        reply = refusal(world, fred, envelope("fred@a.test"), rcpt)
        assert reply is not None, rcpt
        assert reply.enhanced == "5.1.1", rcpt
    world.db.run_sync(repo.set_disposition, cid, "uid-1", "downloaded")
    reply = refusal(world, fred, envelope("fred@a.test"), address)
    assert reply is not None
    assert reply.enhanced == "5.1.1"
    assert not _get_flag(world, cid, "uid-1")


@ensure_deferred
async def test_reply_with_other_recipients_delivers_to_them_only(world: World) -> None:
    """A reply that also names a real user: that user gets it, the query is granted."""
    world.stack.add_user("kate")
    cid = _queried(world, "uid-1")
    _notice_body, address = await _notice(world, cid, "uid-1")
    send(world, world.context(user="fred"), "fred@a.test", address, "kate@a.test", body=REPLY)
    assert _get_flag(world, cid, "uid-1")
    assert len(inbox(world, "kate")) == 1
    assert len(inbox(world, "fred")) == 1


def test_no_reply_domain_keeps_the_old_notice(world: World) -> None:
    """Without a local domain the notice has no Reply-To and names only the button."""
    cid = _queried(world, "uid-1")
    notices = CollectorNotices(
        world.delivery, world.db, world.stack.blobs, "mx.example.test",
        local_domains=LocalDomains.parse("a.test"), collector_id=cid,
    )  # fmt: skip
    config = SimpleNamespace(id=cid, name="isp")
    coro = notices.query(config, "uid-1", HEAD, ["fred@a.test"], "ask", 14, 1.7e9)
    result(Deferred.fromCoroutine(coro))
    [notice] = inbox(world, "fred")
    assert b"Reply-To:" not in notice
    assert f"X-VPOP3-Query: {cid}:uid-1\r\n".encode() in notice


def test_reply_domain_is_default_else_first_plain_local_domain() -> None:
    """The reply address uses the default domain, else the first plain Local Domain,
    else none (wildcards and address entries cannot name one)."""
    assert _reply_domain("main.test", ("a.test",)) == "main.test"
    assert _reply_domain(None, ("*.x.test", "joe@y.test", "a.test")) == "a.test"
    assert _reply_domain(None, ("*.x.test",)) == ""
