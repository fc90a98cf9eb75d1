"""POP3 maildrops over the real store: lease lock, snapshot, commit, hold, bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from sqlalchemy import Connection, select
from twisted.internet.task import Clock

from tests.support.stack import Stack
from vpop3d.app.maildrop import (
    LEASE_TTL,
    RENEW_EVERY,
    MaildropLost,
    StoreMaildropAccess,
    lease_name,
)
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.core.reply import MailboxInUse, ReplyError
from vpop3d.ports import MailboxChanged, Maildrop, Principal
from vpop3d.store import folders, leases, messages
from vpop3d.store.tables import leases as lease_table

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def deliver(stack: Stack, user_id: int, body: bytes) -> int:
    spool = stack.spool(body)

    def store(conn: Connection) -> int:
        _, [row] = store_message(conn, stack.blobs, spool, [FolderTarget(user_id)])
        return row.id

    return stack.db.run_sync(store)


def principal(user_id: int, name: str = "fred") -> Principal:
    return Principal(user_id, name, False, f"{name}@example.test")


def make_access(stack: Stack, clock: Clock | None = None, **kwargs: Any) -> StoreMaildropAccess:
    return StoreMaildropAccess(
        stack.db,
        stack.blobs,
        clock or Clock(),
        owner_prefix="test",
        notifier=stack.bus,
        **kwargs,
    )


def visible(stack: Stack, user_id: int) -> list[tuple[int, str, int]]:
    def listing(conn: Connection) -> list[tuple[int, str, int]]:
        return messages.pop3_listing(conn, folders.inbox(conn, user_id).id)

    return stack.db.read_sync(listing)


async def lease_expiry_reaches(stack: Stack, user_id: int, expected: float) -> None:
    """Wait (real time, bounded) until the renewal transaction has committed."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    def expiry(conn: Connection) -> float:
        query = select(lease_table.c.expires_at).where(lease_table.c.name == lease_name(user_id))
        return float(conn.execute(query).scalar_one())

    for _ in range(200):
        if await stack.db.read(expiry) >= expected:
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("lease was not renewed")


async def lease_released(stack: Stack, user_id: int) -> None:
    """Wait (real time, bounded) until the fire-and-forget release has committed."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    def held(conn: Connection) -> bool:
        query = select(lease_table.c.name).where(lease_table.c.name == lease_name(user_id))
        return conn.execute(query).first() is not None

    for _ in range(200):
        if not await stack.db.read(held):
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("lease was not released")


@ensure_deferred
async def test_snapshot_lists_inbox_in_arrival_order(stack: Stack) -> None:
    """The maildrop lists INBOX messages oldest first with their UIDL and size."""
    fred = stack.add_user("fred")
    first = deliver(stack, fred, b"Subject: 1\r\n\r\none\r\n")
    second = deliver(stack, fred, b"Subject: 2\r\n\r\ntwo two\r\n")
    drop = await make_access(stack).open_maildrop(principal(fred))
    assert [(e.message_id, e.size) for e in drop.entries] == [(first, 19), (second, 23)]
    assert [e.uidl for e in drop.entries] == [uidl for _, uidl, _ in visible(stack, fred)]
    drop.release()


@ensure_deferred
async def test_second_open_is_in_use_until_release(stack: Stack) -> None:
    """Only one maildrop per user at a time; release frees it (manual L1461)."""
    fred = stack.add_user("fred")
    access = make_access(stack)
    drop = await access.open_maildrop(principal(fred))
    with pytest.raises(MailboxInUse):
        await make_access(stack).open_maildrop(principal(fred))
    drop.release()
    await lease_released(stack, fred)
    again = await access.open_maildrop(principal(fred))
    again.release()


@ensure_deferred
async def test_other_users_are_not_blocked(stack: Stack) -> None:
    """Locks are per mailbox: bob can log in while fred is logged in."""
    fred = stack.add_user("fred")
    bob = stack.add_user("bob")
    access = make_access(stack)
    fred_drop = await access.open_maildrop(principal(fred))
    bob_drop = await access.open_maildrop(principal(bob, "bob"))
    fred_drop.release()
    bob_drop.release()


@ensure_deferred
async def test_snapshot_does_not_see_new_arrivals(stack: Stack) -> None:
    """A message delivered during the session is not in its snapshot (manual L1465)."""
    fred = stack.add_user("fred")
    deliver(stack, fred, b"Subject: old\r\n\r\nx\r\n")
    drop = await make_access(stack).open_maildrop(principal(fred))
    deliver(stack, fred, b"Subject: new\r\n\r\ny\r\n")
    assert len(drop.entries) == 1
    await drop.commit([])
    drop = await make_access(stack).open_maildrop(principal(fred))
    assert len(drop.entries) == 2
    drop.release()


@ensure_deferred
async def test_commit_removes_and_publishes(stack: Stack) -> None:
    """QUIT removes the marked messages, releases the lock and tells IMAP sessions."""
    fred = stack.add_user("fred")
    gone = deliver(stack, fred, b"Subject: 1\r\n\r\none\r\n")
    kept = deliver(stack, fred, b"Subject: 2\r\n\r\ntwo\r\n")
    events: list[MailboxChanged] = []
    inbox = stack.db.run_sync(folders.inbox, fred)
    stack.bus.subscribe(inbox.id, events.append)
    drop = await make_access(stack).open_maildrop(principal(fred))
    await drop.commit([gone])
    assert [mid for mid, _, _ in visible(stack, fred)] == [kept]
    assert stack.db.read_sync(messages.by_id, gone) is None
    assert len(events) == 1
    assert events[0].folder_id == inbox.id
    again = await make_access(stack).open_maildrop(principal(fred))
    again.release()


@ensure_deferred
async def test_release_deletes_nothing(stack: Stack) -> None:
    """A dropped connection releases the lock and keeps every message (L1463)."""
    fred = stack.add_user("fred")
    deliver(stack, fred, b"Subject: 1\r\n\r\none\r\n")
    drop = await make_access(stack).open_maildrop(principal(fred))
    drop.release()
    drop.release()  # idempotent
    await lease_released(stack, fred)
    assert len(visible(stack, fred)) == 1
    assert stack.db.run_sync(leases.acquire, lease_name(fred), "other", 0, 1)


@ensure_deferred
async def test_hold_instead_of_delete(stack: Stack) -> None:
    """With hold on, a committed DELE hides the message but keeps it (L6329)."""
    fred = stack.add_user("fred")
    held = deliver(stack, fred, b"Subject: 1\r\n\r\none\r\n")
    drop = await make_access(stack, hold=lambda: True).open_maildrop(principal(fred))
    await drop.commit([held])
    assert visible(stack, fred) == []
    row = stack.db.read_sync(messages.by_id, held)
    assert row is not None
    assert row.held


@ensure_deferred
async def test_uidl_stable_and_never_reused(stack: Stack) -> None:
    """UIDLs survive sessions; a new message after a deletion gets a fresh one (check 9)."""
    fred = stack.add_user("fred")
    first = deliver(stack, fred, b"Subject: 1\r\n\r\none\r\n")
    deliver(stack, fred, b"Subject: 2\r\n\r\ntwo\r\n")
    drop = await make_access(stack).open_maildrop(principal(fred))
    seen = [e.uidl for e in drop.entries]
    drop.release()
    await lease_released(stack, fred)
    drop = await make_access(stack).open_maildrop(principal(fred))
    assert [e.uidl for e in drop.entries] == seen
    await drop.commit([first])
    deliver(stack, fred, b"Subject: 3\r\n\r\nthree\r\n")
    drop = await make_access(stack).open_maildrop(principal(fred))
    latest = drop.entries[-1].uidl
    assert latest not in seen
    assert drop.entries[0].uidl == seen[1]
    drop.release()


@ensure_deferred
async def test_open_body_streams_the_blob(stack: Stack) -> None:
    """open_body returns the stored bytes as a file object."""
    fred = stack.add_user("fred")
    body = b"Subject: body\r\n\r\n" + b"line\r\n" * 1000
    mid = deliver(stack, fred, body)
    drop = await make_access(stack).open_maildrop(principal(fred))
    stream = await drop.open_body(mid)
    try:
        assert stream.read(10) == body[:10]
        assert stream.read() == body[10:]
    finally:
        stream.close()
    drop.release()


@ensure_deferred
async def test_open_body_of_removed_message_is_a_reply_error(stack: Stack) -> None:
    """A message removed behind the session's back gives a clean -ERR, not a crash."""
    fred = stack.add_user("fred")
    mid = deliver(stack, fred, b"Subject: x\r\n\r\nx\r\n")
    drop = await make_access(stack).open_maildrop(principal(fred))
    stack.db.run_sync(messages.remove, [mid])
    with pytest.raises(ReplyError, match="removed"):
        await drop.open_body(mid)
    drop.release()


@ensure_deferred
async def test_expired_lease_of_a_dead_process_is_taken_over(stack: Stack) -> None:
    """A lease left by a killed process stops blocking logins once it expires."""
    fred = stack.add_user("fred")
    clock = Clock()
    clock.advance(1000)
    stack.db.run_sync(leases.acquire, lease_name(fred), "dead:1", 1000 - LEASE_TTL - 1, LEASE_TTL)
    drop = await make_access(stack, clock).open_maildrop(principal(fred))
    drop.release()


@ensure_deferred
async def test_live_session_renews_its_lease(stack: Stack) -> None:
    """The lease is renewed while the session lives, so it never expires under it."""
    fred = stack.add_user("fred")
    clock = Clock()
    drop = await make_access(stack, clock).open_maildrop(principal(fred))
    for _ in range(10):  # 10 x 30 s = 300 s > LEASE_TTL
        clock.advance(RENEW_EVERY)
        await lease_expiry_reaches(stack, fred, clock.seconds() + LEASE_TTL)
    with pytest.raises(MailboxInUse):
        await make_access(stack, clock).open_maildrop(principal(fred))
    await drop.commit([])


@ensure_deferred
async def test_commit_after_losing_the_lease_changes_nothing(stack: Stack) -> None:
    """If another session took an expired lease, QUIT must not delete anything."""
    fred = stack.add_user("fred")
    mid = deliver(stack, fred, b"Subject: x\r\n\r\nx\r\n")
    clock = Clock()
    drop: Maildrop = await make_access(stack, clock).open_maildrop(principal(fred))
    stack.db.run_sync(
        lambda conn: conn.execute(lease_table.update().values(owner="thief", expires_at=1e4))
    )
    with pytest.raises(MaildropLost):
        await drop.commit([mid])
    assert [m for m, _, _ in visible(stack, fred)] == [mid]
