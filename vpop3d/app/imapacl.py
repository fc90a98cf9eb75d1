"""IMAP folder sharing: the ``#users/<owner>/<folder>`` namespace and RFC 4314 ACLs.

A user reaches another user's folder under ``#users/<owner>/<path>`` when the folder's
ACL grants rights to the user, to one of the user's groups (secondary groups, as the
spec says, and also the primary group, so "shared with Sales" reaches every member),
or to ``anyone``. The owner always has every right on their own folders.

:class:`FolderSharing` is mixed into ``imapmail.StoreMailStore``: its public methods
answer the ACL commands (``mailbox.FolderAccess``), and the store hands every name in
the shared namespace to the ``shared_*`` methods, which check the rights (RFC 4314 §4)
and then run the owner's ordinary code path for the owner's folder. Selected shared
folders are wrapped in :class:`SharedSelected`, which enforces the per-message rights.
Changes are published by folder id, so sessions of other users that have the folder
selected see them. ``\\Seen`` and the other flags are stored once per message, so
they are shared by everyone using the folder, not kept per user.

Settings: ``imap.fake_access`` (default true, spec seed-4 §8.3 "Fake access to
inaccessible mailboxes"): the nodes above a shared folder (``#users``,
``#users/<owner>``, inaccessible parents) are listed as existing, selectable, empty
folders; when false they are ``\\Noselect``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, fail, succeed

from vpop3d.core import imaprights
from vpop3d.ports import Principal
from vpop3d.proto.imap.mailbox import (
    DELIMITER,
    AppendResult,
    CopyResult,
    FolderDelta,
    FolderInfo,
    FolderSnapshot,
    FolderStatus,
    MailboxError,
    MessageData,
    MessageMeta,
    RightsInfo,
    SelectedFolder,
)
from vpop3d.store import acl, folders, groups, users
from vpop3d.store import messages as message_repo
from vpop3d.store import settings as settings_repo
from vpop3d.store.rows import Folder

if TYPE_CHECKING:
    from vpop3d.app.imapmail import StoreMailStore

ROOT = "#users"
PREFIX = ROOT + DELIMITER
FAKE_ACCESS_KEY = "imap.fake_access"


def is_shared(name: str) -> bool:
    """True for names in the other users' namespace (RFC 2342 §5)."""
    return name == ROOT or name.startswith(PREFIX)


def split_shared(name: str) -> tuple[str, str]:
    """``#users/<owner>/<path>`` -> (owner, path); either may be empty for upper nodes."""
    rest = name[len(PREFIX) :] if name.startswith(PREFIX) else ""
    owner, _, path = rest.partition(DELIMITER)
    return owner.lower(), folders.normalise(path) if path else ""


def shared_name(owner: str, path: str) -> str:
    return PREFIX + owner + (DELIMITER + path if path else "")


@dataclass(frozen=True, slots=True)
class Target:
    """A name resolved for one user: whose folder it is and what the user may do."""

    owner_id: int
    owner_name: str
    path: str  # the owner's own name for it ("" for #users/<owner>)
    folder: Folder | None  # None: an upper node or a missing folder
    rights: str  # canonical RFC 4314 rights of the user

    @property
    def owner(self) -> Principal:
        return Principal(self.owner_id, self.owner_name, False, "")


def resolve(conn: Connection, user_id: int, name: str) -> Target:
    """Resolve ``name`` (personal or shared) for ``user_id``; NONEXISTENT for bad owners."""
    if not is_shared(name):
        row = users.by_id(conn, user_id)
        folder = folders.by_name(conn, user_id, name)
        return Target(user_id, row.name if row else "", name, folder, imaprights.ALL)
    owner_name, path = split_shared(name)
    owner = users.by_name(conn, owner_name) if owner_name else None
    if owner is None:
        return Target(0, owner_name, path, None, "")
    folder = folders.by_name(conn, owner.id, path) if path else None
    if owner.id == user_id:
        rights = imaprights.ALL
    elif folder is None:
        rights = ""
    else:
        rights = imaprights.union(acl.rights_for(conn, folder.id, user_id))
    return Target(owner.id, owner.name, path, folder, rights)


def require(target: Target, right: str, what: str) -> Folder:
    """The folder when ``right`` is held; NONEXISTENT when the user may not even see it."""
    if target.folder is None or not (set(target.rights) & set("lr" + right)):
        # RFC 4314 §4/§6: without "l" (or "r") the folder's existence is not revealed.
        raise MailboxError("No such mailbox", "NONEXISTENT")
    if right not in target.rights:
        raise MailboxError(f"You may not {what} this mailbox", "NOPERM")
    return target.folder


def _hidden(target: Target) -> bool:
    """True when the user may not see the folder itself (a fake node may stand in)."""
    return target.folder is None or not set(target.rights) & set("lr")


def _fake_access(conn: Connection) -> bool:
    return bool(settings_repo.get(conn, FAKE_ACCESS_KEY, True))


def shared_listing(conn: Connection, user_id: int) -> list[FolderInfo]:
    """Shared folders the user may look up ("l"), plus fake upper nodes when enabled."""
    visible = [g for g in acl.grants_for(conn, user_id) if "l" in g.rights]
    names = {shared_name(g.owner_name, g.folder_name) for g in visible}
    out = [FolderInfo(n) for n in sorted(names)]
    if visible and _fake_access(conn):
        out += [FolderInfo(n) for n in sorted(_upper_nodes(names) - names)]
    return out


def _upper_nodes(names: set[str]) -> set[str]:
    upper: set[str] = set()
    for name in names:
        parts = name.split(DELIMITER)
        upper.update(DELIMITER.join(parts[:depth]) for depth in range(1, len(parts)))
    return upper


def _is_fake_node(conn: Connection, user_id: int, name: str) -> bool:
    """True when ``name`` is shown as a fake empty folder to ``user_id``."""
    if not _fake_access(conn):
        return False
    visible = {
        shared_name(g.owner_name, g.folder_name)
        for g in acl.grants_for(conn, user_id)
        if "l" in g.rights
    }
    return name in _upper_nodes(visible) - visible


# --------------------------------------------------------------------- ACL use cases


def grantee(conn: Connection, identifier: str) -> tuple[str, int | None, str]:
    """(kind, id, canonical identifier) for an RFC 4314 identifier; NO for unknown ones."""
    try:
        who = imaprights.parse_identifier(identifier)
    except imaprights.IdentifierError as err:
        raise MailboxError(str(err), "CANNOT") from None
    if who.kind == imaprights.ANYONE:
        return acl.ANYONE, None, who.render()
    if who.kind == imaprights.GROUP:
        group = groups.by_name(conn, who.name)
        if group is None:
            raise MailboxError(f"No such group: {who.name}", "CANNOT")
        return acl.GROUP, group.id, imaprights.GROUP_PREFIX + group.name
    user = users.by_name(conn, who.name)
    if user is None:
        raise MailboxError(f"No such user: {who.name}", "CANNOT")
    return acl.USER, user.id, user.name


def acl_entries(conn: Connection, folder: Folder) -> list[tuple[str, str]]:
    """(identifier, rights) for GETACL and the CLI: the owner first, with every right."""
    owner = users.by_id(conn, folder.user_id)
    out = [(owner.name if owner else "", imaprights.display(imaprights.ALL))]
    for e in acl.entries(conn, folder.id):
        who = imaprights.Identifier(e.kind, e.name).render()
        out.append((who, imaprights.display(e.rights)))
    return out


def change_acl(conn: Connection, folder: Folder, identifier: str, rights: str | None) -> str:
    """Apply SETACL ``rights`` (``+r``/``-r``/``r``; None: DELETEACL); the new rights.

    Shared by IMAP SETACL/DELETEACL and ``vpop3d folder share``/``unshare``.
    """
    kind, grantee_id, _ = grantee(conn, identifier)
    if kind == acl.USER and grantee_id == folder.user_id:
        raise MailboxError("The owner always has all rights", "CANNOT")
    if rights is None:
        acl.remove(conn, folder.id, kind, grantee_id)
        return ""
    try:
        change = imaprights.parse_change(rights)
    except imaprights.RightsError as err:
        raise MailboxError(str(err), "CANNOT") from None
    current = acl.rights_of(conn, folder.id, kind, grantee_id) or ""
    new = change.apply(current)
    acl.put(conn, folder.id, kind, grantee_id, new)
    return new


def owner_folder(conn: Connection, owner: str, name: str) -> Folder:
    """The folder ``name`` of user ``owner`` (for the CLI)."""
    user = users.by_name(conn, owner.lower())
    if user is None:
        raise MailboxError(f"No such user: {owner}", "NONEXISTENT")
    folder = folders.by_name(conn, user.id, name)
    if folder is None:
        raise MailboxError(f"No such folder: {name}", "NONEXISTENT")
    return folder


def share(conn: Connection, owner: str, name: str, identifier: str, rights: str) -> str:
    """``vpop3d folder share``: SETACL as the owner; the grantee's new rights."""
    return change_acl(conn, owner_folder(conn, owner, name), identifier, rights)


def unshare(conn: Connection, owner: str, name: str, identifier: str) -> None:
    """``vpop3d folder unshare``: DELETEACL as the owner."""
    change_acl(conn, owner_folder(conn, owner, name), identifier, None)


def folder_acl(conn: Connection, owner: str, name: str) -> list[tuple[str, str]]:
    """``vpop3d folder acl``: GETACL as the owner."""
    return acl_entries(conn, owner_folder(conn, owner, name))


# --------------------------------------------------------------------- selected folders


def _strip_flags(
    conn: Connection, rows: Sequence[tuple[int, int, tuple[str, ...]]], rights: str
) -> int:
    """Drop flags the user may not set from freshly copied messages (RFC 4314 §4 COPY)."""
    from vpop3d.app.imapmail import bits_of, flags_of

    changes = []
    for message_id, bits, keywords in rows:
        current = flags_of(bits, keywords)
        kept = imaprights.storable(current, rights)
        if kept != current:
            new_bits, new_keywords = bits_of(kept)
            changes.append((message_id, new_bits, new_keywords))
    return message_repo.update_flags(conn, changes) if changes else 0


def copy_messages(
    store: StoreMailStore,
    user_id: int,
    source: FolderSnapshot,
    source_rights: str,
    uids: Sequence[int],
    dest: str,
    move: bool,
) -> Deferred[CopyResult]:
    """COPY/MOVE from a folder the user selected to ``dest`` (personal or shared).

    RFC 4314 §4: the destination needs "i"; MOVE (RFC 6851 §3.3) also needs "t" and
    "e" on the source. Flags the user may not set in the destination are dropped.
    The destination owner's quota is charged.
    """
    from vpop3d.app.imapmail import check_quota

    if move and not all(r in source_rights for r in "te"):
        return fail(MailboxError("You may not move messages out of this mailbox", "NOPERM"))

    def work(conn: Connection) -> tuple[CopyResult, int, int]:
        target = resolve(conn, user_id, dest)
        if target.folder is None or not (set(target.rights) & set("lri")):
            raise MailboxError("No such mailbox", "TRYCREATE")
        folder = require(target, "i", "copy messages into")
        rows = message_repo.by_uids(conn, source.folder_id, uids)
        crosses = folder.user_id != _owner_of(conn, source.folder_id)
        if not move or crosses:  # RFC 9208: refused as a whole past the quota
            check_quota(conn, folder.user_id, sum(int(r.size) for r in rows))
        src, copied, fresh = [], [], []
        for r in rows:
            if move:
                row = message_repo.move_to(conn, int(r.id), folder.id)
            else:
                row = message_repo.copy_to(conn, int(r.id), folder.id)
            src.append(int(r.uid))
            copied.append(row.uid)
            fresh.append((row.id, row.flags, row.keywords))
        modseq = _strip_flags(conn, fresh, target.rights)
        return CopyResult(folder.uidvalidity, src, copied), folder.id, modseq

    def publish(result: tuple[CopyResult, int, int]) -> CopyResult:
        copy_result, target_id, modseq = result
        if copy_result.source_uids:
            store.changed(target_id, modseq)
            if move:
                store.changed(source.folder_id)
        return copy_result

    done: Deferred[tuple[CopyResult, int, int]] = store.db.write(work)
    return done.addCallback(publish)


def _owner_of(conn: Connection, folder_id: int) -> int:
    folder = folders.by_id(conn, folder_id)
    return folder.user_id if folder else 0


class SharedSelected:
    """A shared folder selected by a user who is not its owner (``SelectedFolder``).

    Reads go straight to the owner's handle; writes are checked against the rights
    the user had at SELECT time (RFC 4314 §4 STORE: a flag the user has no right to
    change is left alone; NO [NOPERM] only when none of them may be changed).
    """

    def __init__(
        self, store: StoreMailStore, user_id: int, inner: SelectedFolder, name: str, rights: str
    ) -> None:
        self._store = store
        self._user_id = user_id
        self._inner = inner
        self._rights = rights
        self.snapshot = replace(
            inner.snapshot,
            name=name,
            rights=rights,
            read_only=inner.snapshot.read_only or imaprights.read_only(rights),
        )

    def refresh(self) -> Deferred[FolderDelta]:
        return self._inner.refresh()

    def load(self, uids: Sequence[int], with_body: bool) -> Deferred[Sequence[MessageData]]:
        return self._inner.load(uids, with_body)

    def store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> Deferred[Sequence[MessageMeta]]:
        if all(r in self._rights for r in "swt"):
            return self._inner.store(uids, mode, flags, unchanged_since)
        allowed = imaprights.storable(flags, self._rights)
        if flags and not allowed and mode:
            return fail(MailboxError("You may not change these flags here", "NOPERM"))
        if not mode and not any(r in self._rights for r in "swt"):
            return fail(MailboxError("You may not change flags here", "NOPERM"))
        return self._limited_store(uids, mode, flags, unchanged_since)

    def _limited_store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None,
    ) -> Deferred[Sequence[MessageMeta]]:
        from vpop3d.app.imapmail import store_flags

        rights, folder_id = self._rights, self.snapshot.folder_id

        def changeable(flag: str) -> bool:
            return imaprights.right_for_flag(flag) in rights

        def work(conn: Connection) -> tuple[list[MessageMeta], int]:
            return store_flags(conn, folder_id, uids, mode, flags, unchanged_since, changeable)

        def publish(out: tuple[list[MessageMeta], int]) -> Sequence[MessageMeta]:
            metas, modseq = out
            if modseq:
                self._store.changed(folder_id, modseq)
            return metas

        done: Deferred[tuple[list[MessageMeta], int]] = self._store.db.write(work)
        return done.addCallback(publish)

    def expunge(self, uids: Sequence[int] | None) -> Deferred[Sequence[int]]:
        if "e" not in self._rights:
            return fail(MailboxError("You may not expunge this mailbox", "NOPERM"))
        return self._inner.expunge(uids)

    def copy(self, uids: Sequence[int], dest: str, move: bool) -> Deferred[CopyResult]:
        return copy_messages(
            self._store, self._user_id, self.snapshot, self._rights, uids, dest, move
        )

    def vanished(self, since_modseq: int) -> Deferred[Sequence[int]]:
        return self._inner.vanished(since_modseq)

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        return self._inner.watch(listener)

    def close(self) -> None:
        self._inner.close()


class FakeSelected:
    """An upper node of the shared namespace, selected: empty, nothing may change.

    It answers READ-WRITE like an ordinary empty folder, since some clients (imaplib)
    treat READ-ONLY on SELECT as an error; with only the "l" right nothing can be set.
    """

    def __init__(self, name: str) -> None:
        self.snapshot = FolderSnapshot(
            folder_id=0,
            name=name,
            uidvalidity=1,
            uidnext=1,
            highest_modseq=1,
            messages=[],
            recent=frozenset(),
            rights="l",
        )

    def refresh(self) -> Deferred[FolderDelta]:
        return succeed(FolderDelta([], [], frozenset(), 1, 1))

    def load(self, uids: Sequence[int], with_body: bool) -> Deferred[Sequence[MessageData]]:
        return succeed([])

    def store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> Deferred[Sequence[MessageMeta]]:
        return succeed([])

    def expunge(self, uids: Sequence[int] | None) -> Deferred[Sequence[int]]:
        return succeed([])

    def copy(self, uids: Sequence[int], dest: str, move: bool) -> Deferred[CopyResult]:
        return succeed(CopyResult(1, [], []))

    def vanished(self, since_modseq: int) -> Deferred[Sequence[int]]:
        return succeed([])

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def close(self) -> None:
        pass


# --------------------------------------------------------------------- the store mix-in

_EMPTY_STATUS = FolderStatus(0, 0, 1, 1, 0, 1)


class FolderSharing:
    """Shared-namespace and ACL behaviour of ``StoreMailStore`` (``mailbox.FolderAccess``)."""

    @property
    def _mail(self) -> StoreMailStore:
        return cast("StoreMailStore", self)

    async def _target(self, user: Principal, name: str) -> Target:
        target: Target = await self._mail.db.read(resolve, user.user_id, name)
        return target

    async def _fake(self, user: Principal, name: str) -> bool:
        fake: bool = await self._mail.db.read(_is_fake_node, user.user_id, name)
        return fake

    # ------------------------------------------------------------- ACL commands

    def get_acl(self, user: Principal, name: str) -> Deferred[Sequence[tuple[str, str]]]:
        def work(conn: Connection) -> list[tuple[str, str]]:
            folder = require(resolve(conn, user.user_id, name), "a", "administer")
            return acl_entries(conn, folder)

        return self._mail.db.read(work)

    def set_acl(self, user: Principal, name: str, identifier: str, rights: str) -> Deferred[None]:
        return self._change(user, name, identifier, rights)

    def delete_acl(self, user: Principal, name: str, identifier: str) -> Deferred[None]:
        return self._change(user, name, identifier, None)

    def _change(
        self, user: Principal, name: str, identifier: str, rights: str | None
    ) -> Deferred[None]:
        def work(conn: Connection) -> None:
            folder = require(resolve(conn, user.user_id, name), "a", "administer")
            change_acl(conn, folder, identifier, rights)

        return self._mail.db.write(work)

    def list_rights(self, user: Principal, name: str, identifier: str) -> Deferred[RightsInfo]:
        def work(conn: Connection) -> RightsInfo:
            folder = require(resolve(conn, user.user_id, name), "a", "administer")
            kind, grantee_id, _ = grantee(conn, identifier)
            if kind == acl.USER and grantee_id == folder.user_id:
                return RightsInfo(imaprights.ALL, ())  # RFC 4314 §3.4: the owner
            return RightsInfo("", imaprights.OPTIONAL_GROUPS)

        return self._mail.db.read(work)

    def my_rights(self, user: Principal, name: str) -> Deferred[str]:
        def work(conn: Connection) -> str:
            target = resolve(conn, user.user_id, name)
            if _hidden(target) and is_shared(name) and _is_fake_node(conn, user.user_id, name):
                return "l"
            if target.folder is None or not target.rights:
                raise MailboxError("No such mailbox", "NONEXISTENT")
            return imaprights.display(target.rights)

        return self._mail.db.read(work)

    # ------------------------------------------------------------- the shared namespace

    def shared_select(
        self, user: Principal, name: str, read_only: bool
    ) -> Deferred[SelectedFolder]:
        return Deferred.fromCoroutine(self._shared_select(user, name, read_only))

    async def _shared_select(self, user: Principal, name: str, read_only: bool) -> SelectedFolder:
        target = await self._target(user, name)
        if _hidden(target) and await self._fake(user, name):
            return FakeSelected(name)
        folder = require(target, "r", "read")
        if target.owner_id == user.user_id:
            return await self._mail.select(target.owner, folder.name, read_only)
        read_only = read_only or imaprights.read_only(target.rights)
        inner = await self._mail.select(target.owner, folder.name, read_only)
        return SharedSelected(self._mail, user.user_id, inner, name, target.rights)

    def shared_status(self, user: Principal, name: str) -> Deferred[FolderStatus]:
        return Deferred.fromCoroutine(self._shared_status(user, name))

    async def _shared_status(self, user: Principal, name: str) -> FolderStatus:
        target = await self._target(user, name)
        if _hidden(target) and await self._fake(user, name):
            return _EMPTY_STATUS
        folder = require(target, "r", "read")
        return await self._mail.status(target.owner, folder.name)

    def shared_append(
        self,
        user: Principal,
        name: str,
        message: bytes,
        flags: frozenset[str],
        internal_date: datetime | None,
    ) -> Deferred[AppendResult]:
        return Deferred.fromCoroutine(
            self._shared_append(user, name, message, flags, internal_date)
        )

    async def _shared_append(
        self,
        user: Principal,
        name: str,
        message: bytes,
        flags: frozenset[str],
        internal_date: datetime | None,
    ) -> AppendResult:
        target = await self._target(user, name)
        if target.folder is None:
            if await self._fake(user, name):
                raise MailboxError("You may not append to this mailbox", "NOPERM")
            raise MailboxError("No such mailbox", "TRYCREATE")
        folder = require(target, "i", "append to")
        # RFC 4314 §4 APPEND: flags the user may not set are silently dropped.
        kept = imaprights.storable(flags, target.rights)
        return await self._mail.append(target.owner, folder.name, message, kept, internal_date)

    def shared_create(self, user: Principal, name: str) -> Deferred[None]:
        def work(conn: Connection) -> None:
            owner, path = split_shared(name)
            if not owner or not path:
                raise MailboxError("Cannot create that mailbox", "CANNOT")
            target = resolve(conn, user.user_id, name)
            if not target.owner_id:
                raise MailboxError("No such user", "NONEXISTENT")
            if target.folder is not None:
                if not target.rights:
                    raise MailboxError("You may not create this mailbox", "NOPERM")
                raise MailboxError("Mailbox already exists", "ALREADYEXISTS")
            parent_path, _, _ = path.rpartition(DELIMITER)
            if parent_path:
                parent = resolve(conn, user.user_id, shared_name(owner, parent_path))
                folder = require(parent, "k", "create mailboxes in")
            elif target.owner_id != user.user_id:
                raise MailboxError("You may not create mailboxes here", "NOPERM")
            else:
                folder = None
            created = folders.create(conn, target.owner_id, path)
            if folder is not None and target.owner_id != user.user_id:
                acl.copy_entries(conn, folder.id, created.id)  # inherit the parent's ACL

        return self._mail.db.write(work)

    def shared_delete(self, user: Principal, name: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._shared_delete(user, name))

    async def _shared_delete(self, user: Principal, name: str) -> None:
        target = await self._target(user, name)
        folder = require(target, "x", "delete")
        await self._mail.delete_folder(target.owner, folder.name)

    def shared_rename(self, user: Principal, old: str, new: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._shared_rename(user, old, new))

    async def _shared_rename(self, user: Principal, old: str, new: str) -> None:
        if is_shared(old) != is_shared(new) or split_shared(old)[0] != split_shared(new)[0]:
            raise MailboxError("Mailboxes cannot move between users", "CANNOT")
        source = await self._target(user, old)
        folder = require(source, "x", "rename")
        _, new_path = split_shared(new)
        parent_path, _, _ = new_path.rpartition(DELIMITER)
        if not new_path:
            raise MailboxError("Cannot rename to that name", "CANNOT")
        if source.owner_id != user.user_id:
            if not parent_path:
                raise MailboxError("You may not create mailboxes here", "NOPERM")
            parent = await self._target(user, shared_name(source.owner_name, parent_path))
            require(parent, "k", "create mailboxes in")
        await self._mail.rename_folder(source.owner, folder.name, new_path)
