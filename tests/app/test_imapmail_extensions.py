"""The IMAP mail store's quota, COPY-over-quota, STATUS SIZE and QRESYNC history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted

from tests.support.stack import Stack
from vpop3d.app.imapmail import StoreMailStore
from vpop3d.ports import Principal
from vpop3d.proto.imap.mailbox import MailboxError

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _body(size: int) -> bytes:
    return b"Subject: s\r\n\r\n" + b"x" * size


async def _setup(stack: Stack, quota_kb: int) -> tuple[StoreMailStore, Principal]:
    user_id = stack.add_user("fred", quota_kb=quota_kb)
    store = StoreMailStore(stack.db, stack.blobs, stack.bus)
    fred = Principal(user_id, "fred", False, "fred@example.test")
    await store.ensure_defaults(fred)
    return store, fred


@ensure_deferred
async def test_quota_counts_all_folders_and_refuses_append(stack: Stack) -> None:
    """Usage sums every folder in kB; APPEND past the limit is OVERQUOTA and stores nothing."""
    store, fred = await _setup(stack, quota_kb=4)
    await store.append(fred, "INBOX", _body(1500), frozenset(), None)
    await store.append(fred, "Sent", _body(1500), frozenset(), None)
    info = await store.quota(fred)
    assert (info.usage_kb, info.limit_kb) == (3, 4)
    with pytest.raises(MailboxError) as refused:
        await store.append(fred, "INBOX", _body(2000), frozenset(), None)
    assert refused.value.code == "OVERQUOTA"
    status = await store.status(fred, "INBOX")
    assert status.messages == 1
    assert status.size == 1500 + len(b"Subject: s\r\n\r\n")
    assert (status.deleted, status.deleted_size) == (0, 0)
    await store.append(fred, "Trash", _body(10), frozenset({"\\Deleted"}), None)
    trash = await store.status(fred, "Trash")
    assert (trash.deleted, trash.deleted_size) == (1, 10 + len(b"Subject: s\r\n\r\n"))


@ensure_deferred
async def test_copy_over_quota_refused_move_allowed(stack: Stack) -> None:
    """COPY that would pass the quota fails as a whole; MOVE adds nothing and works."""
    store, fred = await _setup(stack, quota_kb=2)
    await store.append(fred, "INBOX", _body(1500), frozenset(), None)
    inbox = await store.select(fred, "INBOX", False)
    uid = inbox.snapshot.messages[0].uid
    with pytest.raises(MailboxError) as refused:
        await inbox.copy([uid], "Archive", move=False)
    assert refused.value.code == "OVERQUOTA"
    moved = await inbox.copy([uid], "Archive", move=True)
    assert list(moved.source_uids) == [uid]
    inbox.close()


@ensure_deferred
async def test_set_quota_and_vanished_history(stack: Stack) -> None:
    """set_quota changes the limit; vanished lists UIDs expunged after a MODSEQ."""
    store, fred = await _setup(stack, quota_kb=0)
    await store.set_quota(fred, 100)
    assert (await store.quota(fred)).limit_kb == 100
    for _ in range(3):
        await store.append(fred, "INBOX", _body(10), frozenset({"\\Deleted"}), None)
    inbox = await store.select(fred, "INBOX", False)
    before = inbox.snapshot.highest_modseq
    removed = await inbox.expunge([inbox.snapshot.messages[1].uid])
    assert list(await inbox.vanished(before)) == list(removed)
    assert list(await inbox.vanished(before + 1)) == []
    inbox.close()


@ensure_deferred
async def test_delete_with_inferiors_removes_messages_keeps_children(stack: Stack) -> None:
    """RFC 3501 §6.3.4: DELETE of a parent drops it and its messages; inferiors stay."""
    store, fred = await _setup(stack, quota_kb=0)
    await store.create_folder(fred, "Projects/2026")
    await store.append(fred, "Projects", _body(10), frozenset(), None)
    await store.append(fred, "Projects/2026", _body(10), frozenset(), None)
    await store.delete_folder(fred, "Projects")
    names = {f.name for f in await store.list_folders(fred)}
    assert "Projects" not in names
    assert "Projects/2026" in names
    assert (await store.status(fred, "Projects/2026")).messages == 1
    assert (await store.quota(fred)).usage_kb == 1
    with pytest.raises(MailboxError) as refused:
        await store.select(fred, "Projects", False)
    assert refused.value.code == "NONEXISTENT"
