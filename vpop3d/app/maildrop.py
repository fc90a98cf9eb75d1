"""POP3 maildrops over the store (implements ``ports.MaildropAccess``).

A maildrop is the user's INBOX as it was at login (RFC 1939 §8 snapshot; manual
L1465), held under an exclusive lease in the database so that only one session at
a time can use it, whichever process serves that session (manual L1461). The lease
is renewed while the session lives and expires on its own if the process dies.
QUIT removes, or holds, the marked messages and releases the lease in one
transaction (RFC 1939 §6); a dropped connection only releases it (manual L1463).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from vpop3d.core.reply import MailboxInUse, ReplyError
from vpop3d.ports import ChangeNotifier, MailboxChanged, Maildrop, MaildropEntry, Principal
from vpop3d.store import folders, leases, messages
from vpop3d.store.blobs import BlobStore
from vpop3d.store.db import Database

# Settings key of the POP3 Advanced option "Hold messages instead of deleting them".
HOLD_SETTING = "pop3.hold_instead_of_delete"
LEASE_TTL = 120.0  # seconds a lease outlives a silent holder (a killed process)
RENEW_EVERY = 30.0


def lease_name(user_id: int) -> str:
    """The lease guarding one user's maildrop; shared with IMAP's first session."""
    return f"maildrop:{user_id}"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    folder_id: int | None
    entries: tuple[MaildropEntry, ...]


class MaildropLost(Exception):
    """The lease expired and another session took the maildrop; nothing was changed."""


# ----------------------------------------------------------------- transactions


def _lock_and_snapshot(
    conn: Connection, user_id: int, owner: str, now: float, ttl: float
) -> _Snapshot | None:
    if not leases.acquire(conn, lease_name(user_id), owner, now, ttl):
        return None
    folder = folders.by_name(conn, user_id, folders.INBOX)
    if folder is None:
        return _Snapshot(None, ())
    listing = messages.pop3_listing(conn, folder.id)
    return _Snapshot(
        folder.id, tuple(MaildropEntry(mid, uidl, size) for mid, uidl, size in listing)
    )


def _open_body(conn: Connection, blob_store: BlobStore, message_id: int) -> BinaryIO:
    message = messages.by_id(conn, message_id)
    if message is None or message.held:
        # Someone (an admin, an IMAP client without the lock) removed it meanwhile.
        raise ReplyError.of(550, "", "message was removed by another session")
    return blob_store.open(conn, message.blob_id)


def _commit(
    conn: Connection,
    user_id: int,
    owner: str,
    folder_id: int | None,
    deleted: Sequence[int],
    hold: bool,
    now: float,
) -> int | None:
    """Apply the deletions, release the lease; return the folder's new MODSEQ."""
    name = lease_name(user_id)
    if not leases.renew(conn, name, owner, now, LEASE_TTL):
        raise MaildropLost(name)
    changed: int | None = None
    if deleted and folder_id is not None:
        # Only what is still visible in this INBOX (another client may have moved it).
        visible = {mid for mid, _, _ in messages.pop3_listing(conn, folder_id)}
        present = [mid for mid in deleted if mid in visible]
        if hold:
            messages.hold(conn, present)  # manual L6329: kept, invisible to clients
        else:
            messages.remove(conn, present)
        folder = folders.by_id(conn, folder_id)
        changed = folder.highest_modseq if folder is not None and present else None
    leases.release(conn, name, owner)
    return changed


# ----------------------------------------------------------------- objects


class StoreMaildrop:
    """One session's locked snapshot (``ports.Maildrop``)."""

    _log = Logger()

    def __init__(self, access: StoreMaildropAccess, user_id: int, owner: str, snapshot: _Snapshot):
        self._access = access
        self._user_id = user_id
        self._owner = owner
        self._folder_id = snapshot.folder_id
        self._entries = snapshot.entries
        self._done = False
        self._renewal = LoopingCall(self._renew)
        self._renewal.clock = access.clock
        self._renewal.start(RENEW_EVERY, now=False).addErrback(self._renew_failed)

    @property
    def entries(self) -> Sequence[MaildropEntry]:
        return self._entries

    def open_body(self, message_id: int) -> Deferred[BinaryIO]:
        return self._access.database.read(_open_body, self._access.blob_store, message_id)

    def commit(self, deleted: Sequence[int]) -> Deferred[None]:
        """UPDATE state: remove or hold ``deleted`` and release, in one transaction."""
        self._finish()
        hold = self._access.hold()
        result = self._access.database.write(
            _commit,
            self._user_id,
            self._owner,
            self._folder_id,
            list(deleted),
            hold,
            self._access.clock.seconds(),
        )

        def published(modseq: int | None) -> None:
            notifier = self._access.notifier
            if modseq is not None and notifier is not None and self._folder_id is not None:
                notifier.publish(MailboxChanged(self._folder_id, modseq))

        return result.addCallback(published)

    def release(self) -> None:
        """Give the maildrop back without changing anything (idempotent)."""
        if self._done:
            return
        self._finish()
        released = self._access.database.write(
            leases.release, lease_name(self._user_id), self._owner
        )
        released.addErrback(self._release_failed)

    def _finish(self) -> None:
        self._done = True
        if self._renewal.running:
            self._renewal.stop()

    def _renew(self) -> Deferred[None]:
        renewed = self._access.database.write(
            leases.renew,
            lease_name(self._user_id),
            self._owner,
            self._access.clock.seconds(),
            LEASE_TTL,
        )

        def check(held: bool) -> None:
            if not held and not self._done:
                self._log.warn("POP3 lease for user {user} was lost", user=self._user_id)

        return renewed.addCallback(check).addErrback(self._renew_failed)

    def _renew_failed(self, failure: Failure) -> None:
        self._log.failure("POP3 lease renewal failed for user {user}", failure, user=self._user_id)

    def _release_failed(self, failure: Failure) -> None:
        # The lease expires on its own after LEASE_TTL; log and carry on.
        self._log.failure("POP3 lease release failed for user {user}", failure, user=self._user_id)


class StoreMaildropAccess:
    """``ports.MaildropAccess`` over the database and the blob store."""

    def __init__(
        self,
        database: Database,
        blob_store: BlobStore,
        clock: IReactorTime,
        *,
        hold: Callable[[], bool] = lambda: False,
        notifier: ChangeNotifier | None = None,
        owner_prefix: str | None = None,
    ) -> None:
        """``hold`` answers the listener's "hold instead of delete" option at QUIT."""
        self.database = database
        self.blob_store = blob_store
        self.clock = clock
        self.hold = hold
        self.notifier = notifier
        self._prefix = owner_prefix or f"{socket.gethostname()}:{os.getpid()}"

    def open_maildrop(self, principal: Principal) -> Deferred[Maildrop]:
        owner = f"{self._prefix}:{secrets.token_hex(6)}"
        snapshot = self.database.write(
            _lock_and_snapshot,
            principal.user_id,
            owner,
            self.clock.seconds(),
            LEASE_TTL,
        )

        def opened(result: _Snapshot | None) -> Maildrop:
            if result is None:
                raise MailboxInUse(principal.username)
            return StoreMaildrop(self, principal.user_id, owner, result)

        def raced(failure: Failure) -> Maildrop:
            # Two first-time acquirers inserted the same lease row; the loser is "in use".
            failure.trap(IntegrityError)
            raise MailboxInUse(principal.username)

        return snapshot.addCallback(opened).addErrback(raced)
