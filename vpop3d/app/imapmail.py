"""IMAP's mail-store port (``proto.imap.mailbox``) over the database and blob store.

Each selected folder gets a :class:`StoreSelectedFolder` that remembers the MODSEQ
its session was last told about; ``refresh`` reads what changed since (rows with a
higher MODSEQ, plus the ``expunged`` log), so any number of sessions, delivery and
POP3 stay consistent. Changes are published on the :class:`ports.ChangeNotifier`
after their transaction commits.

The lean queries (only the columns a session needs, so SELECT of a 100,000-message
folder does not drag summaries and envelopes along) live in ``vpop3d.store.messages``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from vpop3d.app.imapacl import FolderSharing, copy_messages, is_shared, shared_listing
from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.core import mime
from vpop3d.ports import ChangeNotifier, MailboxChanged, Principal
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
    QuotaInfo,
    SelectedFolder,
)
from vpop3d.store import blobs, folders, users
from vpop3d.store import messages as message_repo
from vpop3d.store.blobs import BlobStore
from vpop3d.store.db import Database
from vpop3d.store.rows import Folder
from vpop3d.store.tables import SYSTEM_FLAGS, messages

# Spec seed-1 §11.3 / RFC 6154: created on first login.
SPECIAL_USE = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
_BITS = dict(SYSTEM_FLAGS)
_DELETED = _BITS["\\Deleted"]


def flags_of(bits: int, keywords: Sequence[str]) -> frozenset[str]:
    """Store bitmask + keywords -> IMAP flag set."""
    return frozenset([name for name, bit in _BITS.items() if bits & bit] + list(keywords))


@functools.lru_cache(maxsize=4096)
def _stored_flags(bits: int, keywords: str) -> frozenset[str]:
    """One shared flag set per stored (bits, keywords) pair.

    A folder holds few distinct flag combinations, so a 100,000-message SELECT builds a
    handful of sets instead of one per message, and sessions share them in memory.
    """
    return flags_of(bits, keywords.split())


def bits_of(flags: frozenset[str]) -> tuple[int, tuple[str, ...]]:
    """IMAP flag set -> (bitmask, sorted keywords); unknown backslash flags are dropped."""
    bits = 0
    keywords: list[str] = []
    for flag in flags:
        if flag in _BITS:
            bits |= _BITS[flag]
        elif not flag.startswith("\\"):
            keywords.append(flag)
    return bits, tuple(sorted(keywords))


# --------------------------------------------------------------------- lean queries


@dataclass(frozen=True, slots=True)
class _Listing:
    folder: Folder
    metas: list[MessageMeta]
    recent: frozenset[int]


def _metas(conn: Connection, folder_id: int, since_modseq: int | None = None) -> list[MessageMeta]:
    return [
        MessageMeta(uid, _stored_flags(flags, keywords), modseq)
        for uid, flags, keywords, modseq in message_repo.flag_listing(conn, folder_id, since_modseq)
    ]


def _folder(conn: Connection, user_id: int, name: str) -> Folder:
    folder = folders.by_name(conn, user_id, name)
    if folder is None:
        raise MailboxError("No such mailbox", "NONEXISTENT")
    return folder


def _select(conn: Connection, user_id: int, name: str, claim: bool) -> _Listing:
    folder = _folder(conn, user_id, name)
    old, new = folders.claim_recent(conn, folder.id) if claim else (folder.recent_uid, 0)
    metas = _metas(conn, folder.id)
    if not claim:
        new = old  # EXAMINE: look, but leave \Recent to a read-write session
        recent = frozenset(m.uid for m in metas if m.uid > old)
    else:
        recent = frozenset(m.uid for m in metas if old < m.uid <= new)
    refreshed = folders.by_id(conn, folder.id)
    assert refreshed is not None
    return _Listing(refreshed, metas, recent)


def _kb(octets: int) -> int:
    return (octets + 1023) // 1024


def check_quota(conn: Connection, user_id: int, adding: int) -> None:
    """Refuse adding ``adding`` octets past the user's quota (RFC 9208 OVERQUOTA)."""
    user = users.by_id(conn, user_id)
    limit = user.quota_kb if user is not None else 0
    if limit and adding and _kb(message_repo.user_usage(conn, user_id) + adding) > limit:
        raise MailboxError("Over quota", "OVERQUOTA")


def store_flags(
    conn: Connection,
    folder_id: int,
    uids: Sequence[int],
    mode: str,
    flags: frozenset[str],
    unchanged_since: int | None = None,
    changeable: Callable[[str], bool] | None = None,
) -> tuple[list[MessageMeta], int]:
    """STORE ``mode`` ("+", "-" or "" to replace) ``flags`` on ``uids``; (metas, new MODSEQ).

    ``changeable`` limits which flags may change (RFC 4314 §4: a shared folder's rights);
    the others keep their current state whatever the command says.
    """
    may = changeable or (lambda _flag: True)
    wanted = frozenset(f for f in flags if may(f))
    changes: list[tuple[int, int, tuple[str, ...]]] = []
    result: list[tuple[int, int, frozenset[str], int]] = []
    for r in _rows_for(conn, folder_id, uids):
        if unchanged_since is not None and int(r.modseq) > unchanged_since:
            continue  # RFC 7162 §3.1.3: changed since; reported as MODIFIED
        current = flags_of(int(r.flags), (r.keywords or "").split())
        if mode == "+":
            new = current | wanted
        elif mode == "-":
            new = current - wanted
        else:
            new = frozenset(f for f in current if not may(f)) | wanted
        result.append((int(r.id), int(r.uid), new, int(r.modseq)))
        if new != current:
            bits, keywords = bits_of(new)
            changes.append((int(r.id), bits, keywords))
    modseq = message_repo.update_flags(conn, changes) if changes else 0
    changed_ids = {c[0] for c in changes}
    metas = [
        MessageMeta(uid, new, modseq if message_id in changed_ids else old)
        for message_id, uid, new, old in result
    ]
    return metas, modseq


def _rows_for(conn: Connection, folder_id: int, uids: Sequence[int]) -> list[Any]:
    return message_repo.by_uids(conn, folder_id, uids)


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _summary(text: str | None) -> mime.MessageSummary | None:
    if not text:
        return None
    try:
        return mime.MessageSummary.from_json(text)
    except ValueError:
        return None


# --------------------------------------------------------------------- selected folder


class StoreSelectedFolder:
    """One session's handle on a folder (implements ``SelectedFolder``)."""

    _log = Logger()

    def __init__(self, owner: StoreMailStore, user_id: int, listing: _Listing, read_only: bool):
        self._owner = owner
        self._user_id = user_id
        self._folder_id = listing.folder.id
        self._read_only = read_only
        self._seen_modseq = listing.folder.highest_modseq
        self._last_uid = max((m.uid for m in listing.metas), default=0)
        self.snapshot = FolderSnapshot(
            folder_id=listing.folder.id,
            name=listing.folder.name,
            uidvalidity=listing.folder.uidvalidity,
            uidnext=listing.folder.uidnext,
            highest_modseq=listing.folder.highest_modseq,
            messages=listing.metas,
            recent=listing.recent,
            keywords=tuple(sorted({f for m in listing.metas for f in m.flags if f[:1] != "\\"})),
            read_only=read_only,
        )
        self._unwatch: list[Callable[[], None]] = []

    @property
    def _db(self) -> Database:
        return self._owner.db

    def refresh(self) -> Deferred[FolderDelta]:
        seen, last, claim = self._seen_modseq, self._last_uid, not self._read_only

        def work(conn: Connection) -> FolderDelta:
            folder = folders.by_id(conn, self._folder_id)
            if folder is None:  # deleted under us: everything is gone
                return FolderDelta([], [], frozenset(), 0, seen)
            if folder.highest_modseq == seen:
                return FolderDelta([], [], frozenset(), folder.uidnext, seen)
            changed = _metas(conn, folder.id, seen)
            gone = message_repo.expunged_since(conn, folder.id, seen)
            recent: frozenset[int] = frozenset()
            arrivals = [m.uid for m in changed if m.uid > last]
            if claim and arrivals:
                old, new = folders.claim_recent(conn, folder.id)
                recent = frozenset(u for u in arrivals if old < u <= new)
            return FolderDelta(gone, changed, recent, folder.uidnext, folder.highest_modseq)

        run = self._db.write if claim else self._db.read
        done: Deferred[FolderDelta] = run(work)

        def remember(delta: FolderDelta) -> FolderDelta:
            self._seen_modseq = max(self._seen_modseq, delta.highest_modseq)
            self._last_uid = max([self._last_uid, *(m.uid for m in delta.upserted)])
            return delta

        return done.addCallback(remember)

    def load(self, uids: Sequence[int], with_body: bool) -> Deferred[Sequence[MessageData]]:
        blob_store = self._owner.blob_store

        def work(conn: Connection) -> list[MessageData]:
            out = []
            for r in _rows_for(conn, self._folder_id, uids):
                raw = blobs.read_bytes(conn, blob_store, int(r.blob_id)) if with_body else None
                out.append(
                    MessageData(
                        int(r.uid),
                        _when(int(r.internal_date)),
                        int(r.size),
                        raw,
                        _summary(r.summary),
                    )
                )
            return out

        done: Deferred[Sequence[MessageData]] = self._db.read(work)
        if with_body:
            done.addCallback(self._cache_summaries)
        return done

    def _cache_summaries(self, data: Sequence[MessageData]) -> Sequence[MessageData]:
        """Parse once, then keep ENVELOPE/BODYSTRUCTURE in ``messages.summary``."""
        fresh = [
            (d.uid, mime.analyse(d.raw)) for d in data if d.summary is None and d.raw is not None
        ]
        if not fresh:
            return data
        by_uid = dict(fresh)

        def work(conn: Connection) -> None:
            for uid, summary in fresh:
                conn.execute(
                    update(messages)
                    .where(messages.c.folder_id == self._folder_id, messages.c.uid == uid)
                    .values(summary=summary.to_json())
                )

        self._db.write(work).addErrback(lambda f: self._log.failure("caching summaries failed", f))
        return [
            MessageData(d.uid, d.internal_date, d.size, d.raw, by_uid.get(d.uid, d.summary))
            for d in data
        ]

    def store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> Deferred[Sequence[MessageMeta]]:
        def work(conn: Connection) -> tuple[list[MessageMeta], int]:
            return store_flags(conn, self._folder_id, uids, mode, flags, unchanged_since)

        done = self._db.write(work)
        return done.addCallback(self._publish_then(self._folder_id))

    def expunge(self, uids: Sequence[int] | None) -> Deferred[Sequence[int]]:
        def work(conn: Connection) -> tuple[list[int], int]:
            query = select(messages.c.id, messages.c.uid).where(
                messages.c.folder_id == self._folder_id,
                messages.c.flags.op("&")(_DELETED) != 0,
            )
            if uids is not None:
                query = query.where(messages.c.uid.in_(list(uids)))
            rows = list(conn.execute(query))
            if not rows:
                return [], 0
            # Only what this transaction removed: another session may have expunged some.
            removed = message_repo.remove(conn, [int(r.id) for r in rows])
            folder = folders.by_id(conn, self._folder_id)
            return sorted(uid for _, uid in removed), folder.highest_modseq if folder else 0

        return self._db.write(work).addCallback(self._publish_then(self._folder_id))

    def copy(self, uids: Sequence[int], dest: str, move: bool) -> Deferred[CopyResult]:
        if is_shared(dest):  # into another user's folder: rights checked there
            return copy_messages(self._owner, self._user_id, self.snapshot, "te", uids, dest, move)

        def work(conn: Connection) -> tuple[CopyResult, int]:
            target = folders.by_name(conn, self._user_id, dest)
            if target is None:
                raise MailboxError("No such mailbox", "TRYCREATE")
            source, copied = [], []
            rows = _rows_for(conn, self._folder_id, uids)
            if not move:  # RFC 9208: COPY past the quota fails as a whole
                check_quota(conn, self._user_id, sum(int(r.size) for r in rows))
            for r in rows:
                if move:
                    row = message_repo.move_to(conn, int(r.id), target.id)
                else:
                    row = message_repo.copy_to(conn, int(r.id), target.id)
                source.append(int(r.uid))
                copied.append(row.uid)
            after = folders.by_id(conn, target.id)
            return CopyResult(target.uidvalidity, source, copied), (after or target).id

        def publish(result: tuple[CopyResult, int]) -> CopyResult:
            copy_result, target_id = result
            if copy_result.source_uids:
                self._owner.changed(target_id)
                if move:
                    self._owner.changed(self._folder_id)
            return copy_result

        return self._db.write(work).addCallback(publish)

    def vanished(self, since_modseq: int) -> Deferred[Sequence[int]]:
        done: Deferred[Sequence[int]] = self._db.read(
            message_repo.expunged_since, self._folder_id, since_modseq
        )
        return done

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        unsubscribe = self._owner.notifier.subscribe(self._folder_id, lambda _event: listener())
        release = self._owner.poller.watch(self._folder_id, self._seen_modseq)
        done = False

        def stop() -> None:
            nonlocal done
            if not done:
                done = True
                unsubscribe()
                release()

        self._unwatch.append(stop)
        return stop

    def close(self) -> None:
        for unsubscribe in self._unwatch:
            unsubscribe()
        self._unwatch.clear()

    def _publish_then(self, folder_id: int) -> Callable[[tuple[Any, int]], Any]:
        def publish(result: tuple[Any, int]) -> Any:
            value, modseq = result
            if modseq:
                self._owner.changed(folder_id, modseq)
            return value

        return publish


# --------------------------------------------------------------------- the store


class ModSeqPoller:
    """Notices changes made by other processes sharing the database (MODSEQ polling).

    Every ``interval`` seconds, while any folder is watched, one query reads the
    HIGHESTMODSEQ of all watched folders; a folder whose value moved past what this
    process last saw is published on the local notifier, so split deployments on one
    PostgreSQL stay correct (issue 6, item 4). Local changes update the mark first,
    so they are not announced twice.
    """

    _log = Logger()

    def __init__(
        self, db: Database, notifier: ChangeNotifier, clock: Any = None, interval: float = 5.0
    ) -> None:
        self._db = db
        self._notifier = notifier
        self._clock = clock
        self._interval = interval
        self._watchers: dict[int, int] = {}
        self._marks: dict[int, int] = {}
        self._unsubscribe: dict[int, Callable[[], None]] = {}
        self._loop: LoopingCall | None = None

    def watch(self, folder_id: int, modseq: int) -> Callable[[], None]:
        if folder_id not in self._watchers:
            # In-process changes (delivery, other sessions) move the mark too.
            self._unsubscribe[folder_id] = self._notifier.subscribe(
                folder_id, lambda event: self.saw(event.folder_id, event.highest_modseq)
            )
        self._watchers[folder_id] = self._watchers.get(folder_id, 0) + 1
        self._marks[folder_id] = max(self._marks.get(folder_id, 0), modseq)
        if self._loop is None and self._clock is not None and self._interval > 0:
            self._loop = LoopingCall(self.poll)
            self._loop.clock = self._clock
            self._loop.start(self._interval, now=False).addErrback(
                lambda f: self._log.failure("MODSEQ polling stopped", f)
            )

        def release() -> None:
            left = self._watchers.get(folder_id, 0) - 1
            if left > 0:
                self._watchers[folder_id] = left
                return
            self._watchers.pop(folder_id, None)
            self._marks.pop(folder_id, None)
            self._unsubscribe.pop(folder_id, lambda: None)()
            if not self._watchers and self._loop is not None:
                if self._loop.running:
                    self._loop.stop()
                self._loop = None

        return release

    def saw(self, folder_id: int, modseq: int) -> None:
        """A change made in this process (already published)."""
        if folder_id in self._marks:
            self._marks[folder_id] = max(self._marks[folder_id], modseq)

    def poll(self) -> Deferred[None]:
        """Read the watched folders' HIGHESTMODSEQ once and publish the ones that moved."""
        ids = list(self._watchers)
        if not ids:
            done: Deferred[None] = Deferred()
            done.callback(None)
            return done

        def publish(rows: list[tuple[int, int]]) -> None:
            for folder_id, modseq in rows:
                mark = self._marks.get(folder_id)
                if mark is not None and modseq > mark:
                    self._marks[folder_id] = modseq
                    self._notifier.publish(MailboxChanged(folder_id, modseq))

        def logged(failure: Any) -> None:
            self._log.failure("MODSEQ poll failed", failure)

        rows: Deferred[list[tuple[int, int]]] = self._db.read(message_repo.highest_modseqs, ids)
        return rows.addCallback(publish).addErrback(logged)


class StoreMailStore(FolderSharing):
    """Implements ``proto.imap.mailbox.MailStore`` (and ``FolderAccess``) for local users."""

    def __init__(
        self,
        db: Database,
        blob_store: BlobStore,
        notifier: ChangeNotifier,
        clock: Any = None,
        poll_interval: float = 5.0,
    ) -> None:
        self.db = db
        self.blob_store = blob_store
        self.notifier = notifier
        self.poller = ModSeqPoller(db, notifier, clock, poll_interval)
        self._defaults_done: set[int] = set()

    def changed(self, folder_id: int, modseq: int = 0) -> None:
        """Tell every listener of ``folder_id`` (after the change committed)."""
        self.poller.saw(folder_id, modseq)
        self.notifier.publish(MailboxChanged(folder_id, modseq))

    def ensure_defaults(self, user: Principal) -> Deferred[None]:
        if user.user_id in self._defaults_done:
            done: Deferred[None] = Deferred()
            done.callback(None)
            return done

        def work(conn: Connection) -> None:
            folders.inbox(conn, user.user_id)
            for name, use in SPECIAL_USE.items():
                folders.ensure(conn, user.user_id, name, use)

        def remember(_: None) -> None:
            self._defaults_done.add(user.user_id)

        return self.db.write(work).addCallback(remember)

    def list_folders(self, user: Principal) -> Deferred[Sequence[FolderInfo]]:
        def work(conn: Connection) -> list[FolderInfo]:
            own = [
                FolderInfo(f.name, (f.special_use,) if f.special_use else ())
                for f in folders.list_for_user(conn, user.user_id)
            ]
            return own + shared_listing(conn, user.user_id)  # #users/<owner>/... (RFC 4314)

        return self.db.read(work)

    def subscriptions(self, user: Principal) -> Deferred[Sequence[str]]:
        return self.db.read(folders.subscribed, user.user_id)

    def set_subscribed(self, user: Principal, name: str, subscribed: bool) -> Deferred[None]:
        def work(conn: Connection) -> None:
            if subscribed:
                folders.subscribe(conn, user.user_id, name)
            else:
                folders.unsubscribe(conn, user.user_id, name)

        return self.db.write(work)

    def create_folder(self, user: Principal, name: str) -> Deferred[None]:
        if is_shared(name):
            return self.shared_create(user, name)

        def work(conn: Connection) -> None:
            if folders.by_name(conn, user.user_id, name) is not None:
                raise MailboxError("Mailbox already exists", "ALREADYEXISTS")
            parts = name.split(DELIMITER)
            for depth in range(1, len(parts)):  # RFC 3501 §6.3.3: create superiors
                folders.ensure(conn, user.user_id, DELIMITER.join(parts[:depth]))
            folders.create(conn, user.user_id, name)

        return self.db.write(work)

    def delete_folder(self, user: Principal, name: str) -> Deferred[None]:
        if is_shared(name):
            return self.shared_delete(user, name)

        def work(conn: Connection) -> int:
            # RFC 3501 §6.3.4: a mailbox with inferiors may be deleted too; its messages go
            # and its name stays on as an implied \\Noselect parent of the inferiors.
            folder = _folder(conn, user.user_id, name)
            ids = [
                int(r.id)
                for r in conn.execute(
                    select(messages.c.id).where(messages.c.folder_id == folder.id)
                )
            ]
            message_repo.remove(conn, ids)
            folders.remove(conn, folder.id)
            return folder.id

        return self.db.write(work).addCallback(lambda folder_id: self.changed(folder_id))

    def rename_folder(self, user: Principal, old: str, new: str) -> Deferred[None]:
        if is_shared(old) or is_shared(new):
            return self.shared_rename(user, old, new)

        def work(conn: Connection) -> list[int]:
            source = _folder(conn, user.user_id, old)
            if folders.by_name(conn, user.user_id, new) is not None:
                raise MailboxError("Mailbox already exists", "ALREADYEXISTS")
            parts = new.split(DELIMITER)
            for depth in range(1, len(parts)):
                folders.ensure(conn, user.user_id, DELIMITER.join(parts[:depth]))
            if source.name == folders.INBOX:
                # RFC 3501 §6.3.5: move INBOX's messages to the new name; INBOX stays, empty.
                target = folders.create(conn, user.user_id, new)
                for r in _rows_for(conn, source.id, [m.uid for m in _metas(conn, source.id)]):
                    message_repo.move_to(conn, int(r.id), target.id)
                return [source.id, target.id]
            prefix = source.name + DELIMITER
            for folder in folders.list_for_user(conn, user.user_id):
                if folder.name.startswith(prefix):
                    folders.rename(conn, folder.id, new + DELIMITER + folder.name[len(prefix) :])
            folders.rename(conn, source.id, new)
            return []

        def publish(ids: list[int]) -> None:
            for folder_id in ids:
                self.changed(folder_id)

        return self.db.write(work).addCallback(publish)

    def select(self, user: Principal, name: str, read_only: bool) -> Deferred[SelectedFolder]:
        if is_shared(name):
            return self.shared_select(user, name, read_only)
        run = self.db.read if read_only else self.db.write
        done: Deferred[_Listing] = run(_select, user.user_id, name, not read_only)

        def wrap(listing: _Listing) -> SelectedFolder:
            return StoreSelectedFolder(self, user.user_id, listing, read_only)

        return done.addCallback(wrap)

    def status(self, user: Principal, name: str) -> Deferred[FolderStatus]:
        if is_shared(name):
            return self.shared_status(user, name)

        def work(conn: Connection) -> FolderStatus:
            folder = _folder(conn, user.user_id, name)
            count, size, unseen, recent, deleted, deleted_size = message_repo.folder_counts(
                conn, folder.id, folder.recent_uid
            )
            return FolderStatus(
                messages=count,
                recent=recent,
                uidnext=folder.uidnext,
                uidvalidity=folder.uidvalidity,
                unseen=unseen,
                highest_modseq=folder.highest_modseq,
                size=size,
                deleted=deleted,
                deleted_size=deleted_size,
            )

        return self.db.read(work)

    def quota(self, user: Principal) -> Deferred[QuotaInfo]:
        def work(conn: Connection) -> QuotaInfo:
            row = users.by_id(conn, user.user_id)
            usage = _kb(message_repo.user_usage(conn, user.user_id))
            return QuotaInfo(usage, row.quota_kb if row is not None else 0)

        return self.db.read(work)

    def set_quota(self, user: Principal, limit_kb: int) -> Deferred[None]:
        def work(conn: Connection) -> None:
            users.update_fields(conn, user.user_id, quota_kb=limit_kb)

        return self.db.write(work)

    def append(
        self,
        user: Principal,
        name: str,
        message: bytes,
        flags: frozenset[str],
        internal_date: datetime | None,
    ) -> Deferred[AppendResult]:
        if is_shared(name):
            return self.shared_append(user, name, message, flags, internal_date)
        return Deferred.fromCoroutine(self._append(user, name, message, flags, internal_date))

    async def _append(
        self,
        user: Principal,
        name: str,
        message: bytes,
        flags: frozenset[str],
        internal_date: datetime | None,
    ) -> AppendResult:
        spool = self.blob_store.new_spool()
        try:
            spool.write(message)
            await self.db.call_in_pool(self.blob_store.prepare, spool)
            bits, keywords = bits_of(flags)
            summary = mime.analyse(message).to_json()
            when = int(internal_date.timestamp()) if internal_date else None

            def work(conn: Connection) -> tuple[AppendResult, int, int]:
                folder = folders.by_name(conn, user.user_id, name)
                if folder is None:
                    raise MailboxError("No such mailbox", "TRYCREATE")
                check_quota(conn, user.user_id, len(message))
                _, rows = store_message(
                    conn,
                    self.blob_store,
                    spool,
                    [FolderTarget(user.user_id, folder.name, bits)],
                    internal_date=when,
                    summary=summary,
                )
                row = rows[0]
                modseq = row.modseq
                if keywords:
                    modseq = message_repo.update_flags(conn, [(row.id, bits, keywords)])
                return AppendResult(folder.uidvalidity, row.uid), folder.id, modseq

            result, folder_id, modseq = await self.db.write(work)
        except BaseException:
            spool.discard()
            raise
        self.changed(folder_id, modseq)
        return result
