"""Folder sharing over the real store: ACL rows, #users names, rights enforcement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted

from tests.support.server import write_config
from tests.support.stack import Stack
from vpop3d.app import imapacl
from vpop3d.app.imapmail import StoreMailStore
from vpop3d.cli import main
from vpop3d.ports import Principal
from vpop3d.proto.imap.mailbox import MailboxError
from vpop3d.store import acl, folders, groups, users

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)

MESSAGE = b"From: a@b.test\r\nSubject: hello\r\n\r\nHi.\r\n"


@dataclass
class World:
    store: StoreMailStore
    alice: Principal
    bob: Principal
    carol: Principal
    dave: Principal
    stack: Stack

    def share(self, identifier: str, rights: str, name: str = "Shared") -> str:
        result: str = self.stack.db.run_sync(imapacl.share, "alice", name, identifier, rights)
        return result


async def _world(stack: Stack) -> World:
    """alice owns Shared; sales = bob (secondary) + dave (primary); carol is outside."""
    ids = {name: stack.add_user(name) for name in ("alice", "bob", "carol", "dave")}

    def setup(conn: Any) -> None:
        sales = groups.add(conn, "sales")
        users.set_secondary_groups(conn, ids["bob"], [sales.id])
        users.update_fields(conn, ids["dave"], primary_group_id=sales.id)
        folders.create(conn, ids["alice"], "Shared")

    stack.db.run_sync(setup)
    store = StoreMailStore(stack.db, stack.blobs, stack.bus)
    people = {n: Principal(i, n, False, f"{n}@example.test") for n, i in ids.items()}
    for person in people.values():
        await store.ensure_defaults(person)
    return World(store, people["alice"], people["bob"], people["carol"], people["dave"], stack)


async def _names(world: World, who: Principal) -> set[str]:
    return {f.name for f in await world.store.list_folders(who)}


async def _refused(call: Any, code: str) -> MailboxError:
    with pytest.raises(MailboxError) as refused:
        await call
    assert refused.value.code == code, refused.value.text
    return refused.value


@ensure_deferred
async def test_group_share_lists_for_members_only(stack: Stack) -> None:
    """A share with group:sales reaches secondary and primary members, not carol."""
    world = await _world(stack)
    assert world.share("group:sales", "lr") == "lr"
    shared = {"#users", "#users/alice", "#users/alice/Shared"}
    assert shared <= await _names(world, world.bob)
    assert shared <= await _names(world, world.dave)
    assert not any(n.startswith("#users") for n in await _names(world, world.carol))


@ensure_deferred
async def test_fake_access_off_leaves_upper_nodes_out(stack: Stack) -> None:
    """imap.fake_access false: #users and #users/alice are not listed (the session adds
    them as \\Noselect) and cannot be selected."""
    world = await _world(stack)
    world.share("bob", "lr")
    stack.put_setting("imap.fake_access", False)
    names = await _names(world, world.bob)
    assert "#users/alice/Shared" in names
    assert "#users" not in names
    assert "#users/alice" not in names
    await _refused(world.store.select(world.bob, "#users/alice", True), "NONEXISTENT")


@ensure_deferred
async def test_fake_nodes_select_empty(stack: Stack) -> None:
    """With fake access on, #users/alice selects as an empty folder with only "l"."""
    world = await _world(stack)
    world.share("bob", "lr")
    node = await world.store.select(world.bob, "#users/alice", False)
    assert node.snapshot.messages == []
    assert node.snapshot.rights == "l"
    status = await world.store.status(world.bob, "#users")
    assert status.messages == 0
    assert await world.store.my_rights(world.bob, "#users/alice") == "l"


@ensure_deferred
async def test_lookup_without_read_is_noperm_and_no_rights_is_nonexistent(stack: Stack) -> None:
    """ "l" alone: SELECT gets NOPERM; no rights at all: the folder does not exist."""
    world = await _world(stack)
    world.share("bob", "l")
    await _refused(world.store.select(world.bob, "#users/alice/Shared", False), "NOPERM")
    await _refused(world.store.select(world.carol, "#users/alice/Shared", False), "NONEXISTENT")
    await _refused(world.store.status(world.carol, "#users/alice/Shared"), "NONEXISTENT")
    await _refused(world.store.select(world.bob, "#users/nobody/INBOX", False), "NONEXISTENT")


@ensure_deferred
async def test_select_read_only_without_write_rights(stack: Stack) -> None:
    """ "lr" selects READ-ONLY; adding "s" makes it read-write."""
    world = await _world(stack)
    world.share("group:sales", "lr")
    ro = await world.store.select(world.bob, "#users/alice/Shared", False)
    assert ro.snapshot.read_only
    assert ro.snapshot.rights == "lr"
    ro.close()
    world.share("group:sales", "+s")
    rw = await world.store.select(world.bob, "#users/alice/Shared", False)
    assert not rw.snapshot.read_only
    rw.close()


@ensure_deferred
async def test_store_only_changes_flags_the_rights_allow(stack: Stack) -> None:
    """With "s" only: \\Seen changes, \\Flagged alone is NOPERM, replace keeps \\Flagged."""
    world = await _world(stack)
    world.share("bob", "lrs")
    await world.store.append(world.alice, "Shared", MESSAGE, frozenset({"\\Flagged"}), None)
    folder = await world.store.select(world.bob, "#users/alice/Shared", False)
    uid = folder.snapshot.messages[0].uid
    await _refused(folder.store([uid], "+", frozenset({"\\Flagged"})), "NOPERM")
    metas = await folder.store([uid], "+", frozenset({"\\Seen", "\\Answered"}))
    assert metas[0].flags == {"\\Flagged", "\\Seen"}
    metas = await folder.store([uid], "", frozenset())
    assert metas[0].flags == {"\\Flagged"}
    await _refused(folder.expunge(None), "NOPERM")
    alice_view = await world.store.select(world.alice, "Shared", True)
    assert alice_view.snapshot.messages[0].flags == {"\\Flagged"}  # one flag set for all


@ensure_deferred
async def test_full_write_rights_store_and_expunge(stack: Stack) -> None:
    """ "lrswte" lets bob flag, delete and expunge in alice's folder."""
    world = await _world(stack)
    world.share("bob", "lrswte")
    await world.store.append(world.alice, "Shared", MESSAGE, frozenset(), None)
    folder = await world.store.select(world.bob, "#users/alice/Shared", False)
    uid = folder.snapshot.messages[0].uid
    await folder.store([uid], "+", frozenset({"\\Deleted", "\\Flagged"}))
    assert list(await folder.expunge(None)) == [uid]
    assert (await world.store.status(world.alice, "Shared")).messages == 0


@ensure_deferred
async def test_append_needs_insert_and_notifies_other_users(stack: Stack) -> None:
    """APPEND needs "i"; alice's APPEND wakes bob's watcher of the shared folder."""
    world = await _world(stack)
    world.share("bob", "lr")
    await _refused(
        world.store.append(world.bob, "#users/alice/Shared", MESSAGE, frozenset(), None), "NOPERM"
    )
    folder = await world.store.select(world.bob, "#users/alice/Shared", True)
    woken: list[int] = []
    folder.watch(lambda: woken.append(1))
    await world.store.append(world.alice, "Shared", MESSAGE, frozenset(), None)
    assert woken
    delta = await folder.refresh()
    assert len(delta.upserted) == 1
    world.share("bob", "+i")
    result = await world.store.append(
        world.bob, "#users/alice/Shared", MESSAGE, frozenset({"\\Seen", "\\Flagged"}), None
    )
    assert result.uid == 2
    delta = await folder.refresh()
    assert [m.flags for m in delta.upserted] == [frozenset()]  # no "s"/"w": flags dropped


@ensure_deferred
async def test_copy_into_and_out_of_shared(stack: Stack) -> None:
    """COPY into a shared folder needs "i"; MOVE out needs "t" and "e"; COPY out works."""
    world = await _world(stack)
    await world.store.append(world.bob, "INBOX", MESSAGE, frozenset({"\\Seen"}), None)
    await world.store.append(world.alice, "Shared", MESSAGE, frozenset(), None)
    world.share("bob", "lr")
    inbox = await world.store.select(world.bob, "INBOX", False)
    uid = inbox.snapshot.messages[0].uid
    await _refused(inbox.copy([uid], "#users/alice/Shared", False), "NOPERM")
    await _refused(inbox.copy([uid], "#users/carol/INBOX", False), "TRYCREATE")
    world.share("bob", "+is")
    copied = await inbox.copy([uid], "#users/alice/Shared", False)
    assert list(copied.dest_uids) == [2]
    shared = await world.store.select(world.bob, "#users/alice/Shared", False)
    assert [m.flags for m in shared.snapshot.messages] == [frozenset(), {"\\Seen"}]
    await _refused(shared.copy([1], "INBOX", True), "NOPERM")
    out = await shared.copy([1], "INBOX", False)
    assert list(out.source_uids) == [1]
    assert (await world.store.status(world.bob, "INBOX")).messages == 2
    assert (await world.store.status(world.alice, "INBOX")).messages == 0
    world.share("bob", "+te")
    shared = await world.store.select(world.bob, "#users/alice/Shared", False)
    moved = await shared.copy([2], "INBOX", True)
    assert list(moved.source_uids) == [2]
    assert (await world.store.status(world.bob, "INBOX")).messages == 3
    assert (await world.store.status(world.alice, "Shared")).messages == 1


@ensure_deferred
async def test_inaccessible_parent_is_a_fake_node(stack: Stack) -> None:
    """alice shares Projects/2026 only: Projects is listed and selects as a fake empty node."""
    world = await _world(stack)
    stack.db.run_sync(folders.create, world.alice.user_id, "Projects")
    stack.db.run_sync(folders.create, world.alice.user_id, "Projects/2026")
    await world.store.append(world.alice, "Projects", MESSAGE, frozenset(), None)
    world.share("bob", "lr", name="Projects/2026")
    assert "#users/alice/Projects" in await _names(world, world.bob)
    node = await world.store.select(world.bob, "#users/alice/Projects", False)
    assert node.snapshot.messages == []
    assert await world.store.my_rights(world.bob, "#users/alice/Projects") == "l"
    stack.put_setting("imap.fake_access", False)
    await _refused(world.store.select(world.bob, "#users/alice/Projects", False), "NONEXISTENT")


@ensure_deferred
async def test_acl_commands_need_administer(stack: Stack) -> None:
    """GETACL/SETACL/LISTRIGHTS need "a"; MYRIGHTS tells the caller's own rights."""
    world = await _world(stack)
    world.share("bob", "lr")
    name = "#users/alice/Shared"
    await _refused(world.store.get_acl(world.bob, name), "NOPERM")
    await _refused(world.store.set_acl(world.bob, name, "carol", "lr"), "NOPERM")
    assert await world.store.my_rights(world.bob, name) == "lr"
    world.share("bob", "+a")
    await world.store.set_acl(world.bob, name, "group:sales", "+lrs")
    await world.store.set_acl(world.bob, name, "anyone", "l")
    entries = await world.store.get_acl(world.bob, name)
    assert list(entries) == [
        ("alice", "lrswipkxteacd"),
        ("bob", "lra"),
        ("group:sales", "lrs"),
        ("anyone", "l"),
    ]
    assert "#users/alice/Shared" in await _names(world, world.carol)  # via anyone
    info = await world.store.list_rights(world.bob, name, "carol")
    assert (info.required, "".join(info.optional)) == ("", "lrswipkxtea")
    owner = await world.store.list_rights(world.bob, name, "alice")
    assert owner.required == "lrswipkxtea"
    await world.store.delete_acl(world.bob, name, "anyone")
    assert "#users/alice/Shared" not in await _names(world, world.carol)


@ensure_deferred
async def test_bad_identifiers_change_nothing(stack: Stack) -> None:
    """Unknown users/groups, negative rights and the owner are refused with CANNOT."""
    world = await _world(stack)
    for who in ("nobody", "group:nogroup", "-bob", "alice"):
        await _refused(world.store.set_acl(world.alice, "Shared", who, "lr"), "CANNOT")
    entries = await world.store.get_acl(world.alice, "Shared")
    assert [who for who, _ in entries] == ["alice"]


@ensure_deferred
async def test_owner_rights_and_own_names(stack: Stack) -> None:
    """The owner has every right on her folders, also under #users/alice/..."""
    world = await _world(stack)
    assert await world.store.my_rights(world.alice, "Shared") == "lrswipkxteacd"
    folder = await world.store.select(world.alice, "#users/alice/Shared", False)
    assert not folder.snapshot.read_only
    assert folder.snapshot.rights is None


@ensure_deferred
async def test_create_delete_rename_need_k_and_x(stack: Stack) -> None:
    """CREATE under a shared folder needs "k" (children inherit the ACL), DELETE needs "x"."""
    world = await _world(stack)
    world.share("bob", "lr")
    await _refused(world.store.create_folder(world.bob, "#users/alice/Shared/Sub"), "NOPERM")
    await _refused(world.store.create_folder(world.bob, "#users/alice/Top"), "NOPERM")
    world.share("bob", "+k")
    await world.store.create_folder(world.bob, "#users/alice/Shared/Sub")
    assert "#users/alice/Shared/Sub" in await _names(world, world.bob)
    await _refused(world.store.delete_folder(world.bob, "#users/alice/Shared/Sub"), "NOPERM")
    await world.store.set_acl(world.alice, "Shared/Sub", "bob", "+x")
    await world.store.rename_folder(
        world.bob, "#users/alice/Shared/Sub", "#users/alice/Shared/Renamed"
    )
    await _refused(
        world.store.rename_folder(world.bob, "#users/alice/Shared/Renamed", "Mine"), "CANNOT"
    )
    await world.store.delete_folder(world.bob, "#users/alice/Shared/Renamed")
    assert "Shared/Renamed" not in {f.name for f in await world.store.list_folders(world.alice)}


@ensure_deferred
async def test_subscribe_to_shared_name(stack: Stack) -> None:
    """SUBSCRIBE keeps the shared name in bob's own subscription list."""
    world = await _world(stack)
    world.share("bob", "lr")
    await world.store.set_subscribed(world.bob, "#users/alice/Shared", True)
    assert "#users/alice/Shared" in await world.store.subscriptions(world.bob)


def test_cli_use_cases_and_cascade(stack: Stack) -> None:
    """share/unshare/folder_acl work by names; deleting the folder drops its ACL rows."""
    ids = {name: stack.add_user(name) for name in ("alice", "bob")}
    folder = stack.db.run_sync(folders.create, ids["alice"], "Shared")
    assert stack.db.run_sync(imapacl.share, "alice", "Shared", "bob", "lrc") == "lrkx"
    assert stack.db.read_sync(imapacl.folder_acl, "alice", "Shared") == [
        ("alice", "lrswipkxteacd"),
        ("bob", "lrkxc"),
    ]
    with pytest.raises(MailboxError):
        stack.db.run_sync(imapacl.share, "alice", "Nope", "bob", "lr")
    stack.db.run_sync(imapacl.unshare, "alice", "Shared", "bob")
    assert stack.db.read_sync(imapacl.folder_acl, "alice", "Shared") == [("alice", "lrswipkxteacd")]
    stack.db.run_sync(imapacl.share, "alice", "Shared", "anyone", "l")
    stack.db.run_sync(imapacl.share, "alice", "Shared", "anyone", "lr")
    assert stack.db.read_sync(acl.entries, folder.id)[0].rights == "lr"
    stack.db.run_sync(folders.remove, folder.id)
    assert stack.db.read_sync(acl.entries, folder.id) == []


def test_cli_folder_share_unshare_acl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack: Stack
) -> None:
    """`vpop3d folder share|acl|unshare` change and print the ACL; bad input exits 2."""
    ids = {name: stack.add_user(name) for name in ("alice", "bob")}
    stack.db.run_sync(folders.create, ids["alice"], "Shared")
    config, _ports = write_config(tmp_path, stack.db.engine.url.render_as_string(False))
    base = ["-c", str(config), "folder"]
    assert main([*base, "share", "alice", "Shared", "bob", "lrs"]) == 0
    assert capsys.readouterr().out == "bob: lrs\n"
    assert main([*base, "acl", "alice", "Shared"]) == 0
    assert capsys.readouterr().out == "alice\tlrswipkxteacd\nbob\tlrs\n"
    assert main([*base, "share", "alice", "Shared", "bob", "lrq"]) == 2
    assert "Unknown right 'q'" in capsys.readouterr().err
    assert main([*base, "share", "alice", "Shared", "group:nobody", "lr"]) == 2
    assert "No such group: nobody" in capsys.readouterr().err
    assert main([*base, "unshare", "alice", "Shared", "bob"]) == 0
    assert main([*base, "acl", "alice", "Shared"]) == 0
    assert capsys.readouterr().out == "alice\tlrswipkxteacd\n"


@ensure_deferred
async def test_removing_a_grantee_removes_its_shares(stack: Stack) -> None:
    """Deleting a user or a group deletes the ACL rows that name it, and nothing else."""
    world = await _world(stack)
    world.share("bob", "lr")
    world.share("group:sales", "lrs")
    world.share("carol", "l")
    folder = stack.db.run_sync(folders.by_name, world.alice.user_id, "Shared")
    assert folder is not None

    def kinds() -> set[tuple[str, int | None]]:
        rows = stack.db.run_sync(acl.entries, folder.id)
        return {(e.kind, e.grantee_id) for e in rows}

    sales = stack.db.run_sync(groups.by_name, "sales")
    assert sales is not None
    assert kinds() == {
        ("user", world.bob.user_id),
        ("group", sales.id),
        ("user", world.carol.user_id),
    }
    stack.db.run_sync(users.remove, world.bob.user_id)
    stack.db.run_sync(groups.remove, sales.id)
    assert kinds() == {("user", world.carol.user_id)}
