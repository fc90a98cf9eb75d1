"""The port IMAP needs from the application layer: folders and messages of one user.

Folder names are IMAP names with ``/`` as the hierarchy delimiter and an empty
personal namespace (spec seed-1 §11.3); ``INBOX`` is always spelt in upper case.
Selecting a folder returns a :class:`SelectedFolder`, a per-session handle that
remembers what this session has been told, so ``refresh`` can report exactly the
expunges, arrivals and flag changes made since by other sessions or by delivery.

Every method that may touch the database returns a ``Deferred``. Failures a client
caused are raised as :class:`MailboxError` with an RFC 5530 response code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from twisted.internet.defer import Deferred

from vpop3d.core.mime import MessageSummary
from vpop3d.ports import Principal

DELIMITER = "/"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class MailboxError(Exception):
    """A refused mailbox operation; ``code`` is an RFC 5530 code such as NONEXISTENT."""

    def __init__(self, text: str, code: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.code = code


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """One folder as LIST shows it."""

    name: str
    attributes: tuple[str, ...] = ()  # \Noselect, \HasChildren, \Sent (RFC 6154) ...


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """What a session keeps per message: enough for FLAGS, UID, SEARCH on flags."""

    uid: int
    flags: frozenset[str]  # system flags and keywords, never \Recent
    modseq: int = 0


@dataclass(frozen=True, slots=True)
class FolderSnapshot:
    """The state of a folder when a session selects it (RFC 3501 §6.3.1)."""

    folder_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    messages: Sequence[MessageMeta]  # ascending UID: message sequence numbers
    recent: frozenset[int]  # UIDs this session is the first to see (RFC 3501 §2.3.2)
    keywords: tuple[str, ...] = ()  # keywords in use, for FLAGS/PERMANENTFLAGS
    read_only: bool = False
    rights: str | None = None  # RFC 4314 rights on a shared folder; None: the owner's (all)


@dataclass(frozen=True, slots=True)
class FolderDelta:
    """Changes since the last snapshot or refresh of this handle."""

    expunged: Sequence[int]  # UIDs
    upserted: Sequence[MessageMeta]  # new messages and messages whose flags changed
    recent: frozenset[int]  # newly arrived UIDs that this session claims as \Recent
    uidnext: int
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class MessageData:
    """A message as FETCH/SEARCH need it beyond flags."""

    uid: int
    internal_date: datetime
    size: int
    raw: bytes | None  # the full RFC 5322 message when the caller asked for it
    summary: MessageSummary | None = None  # cached ENVELOPE/BODYSTRUCTURE, if stored


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """STATUS counters (RFC 3501 §6.3.10)."""

    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int
    highest_modseq: int
    size: int = 0  # octets (RFC 8438)
    deleted: int = 0  # messages flagged \Deleted (RFC 9208 STATUS DELETED)
    deleted_size: int = 0  # their octets (DELETED-STORAGE, reported in kB)


@dataclass(frozen=True, slots=True)
class QuotaInfo:
    """The user's one quota root ``""`` (RFC 9208 STORAGE, in units of 1024 octets)."""

    usage_kb: int
    limit_kb: int  # 0: no limit, so no quota root


@dataclass(frozen=True, slots=True)
class CopyResult:
    """UIDPLUS COPYUID data (RFC 4315 §3): source and destination UIDs in order."""

    uidvalidity: int
    source_uids: Sequence[int]
    dest_uids: Sequence[int]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """UIDPLUS APPENDUID data."""

    uidvalidity: int
    uid: int


class SelectedFolder(Protocol):
    """One session's open folder; all UIDs refer to this folder."""

    @property
    def snapshot(self) -> FolderSnapshot: ...

    def refresh(self) -> Deferred[FolderDelta]:
        """Changes made since the snapshot or the previous refresh."""

    def load(self, uids: Sequence[int], with_body: bool) -> Deferred[Sequence[MessageData]]:
        """Dates, sizes and optionally the raw messages; expunged UIDs are skipped."""

    def store(
        self,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        unchanged_since: int | None = None,
    ) -> Deferred[Sequence[MessageMeta]]:
        """Set (mode ''), add ('+') or remove ('-') flags; fire with the new state.

        With ``unchanged_since`` (RFC 7162 UNCHANGEDSINCE), messages whose MODSEQ is
        higher are left alone and left out of the result.
        """

    def expunge(self, uids: Sequence[int] | None) -> Deferred[Sequence[int]]:
        """Remove \\Deleted messages (only among ``uids`` when given); fire with UIDs."""

    def copy(self, uids: Sequence[int], dest: str, move: bool) -> Deferred[CopyResult]:
        """Copy (or move) messages to folder ``dest``; MailboxError TRYCREATE if absent."""

    def vanished(self, since_modseq: int) -> Deferred[Sequence[int]]:
        """UIDs expunged from this folder at a MODSEQ above ``since_modseq`` (QRESYNC)."""

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when the folder may have changed; returns an unsubscribe."""

    def close(self) -> None:
        """Forget this handle (stop watching)."""


class MailStore(Protocol):
    """One user's folders, as IMAP sees them."""

    def ensure_defaults(self, user: Principal) -> Deferred[None]:
        """Create INBOX and the special-use folders if missing (first login)."""

    def list_folders(self, user: Principal) -> Deferred[Sequence[FolderInfo]]: ...

    def subscriptions(self, user: Principal) -> Deferred[Sequence[str]]:
        """Subscribed names, whether or not the folders exist (RFC 3501 §6.3.6)."""

    def set_subscribed(self, user: Principal, name: str, subscribed: bool) -> Deferred[None]: ...

    def create_folder(self, user: Principal, name: str) -> Deferred[None]: ...

    def delete_folder(self, user: Principal, name: str) -> Deferred[None]: ...

    def rename_folder(self, user: Principal, old: str, new: str) -> Deferred[None]:
        """RFC 3501 §6.3.5, including moving INBOX's messages when old is INBOX."""

    def select(self, user: Principal, name: str, read_only: bool) -> Deferred[SelectedFolder]: ...

    def status(self, user: Principal, name: str) -> Deferred[FolderStatus]: ...

    def quota(self, user: Principal) -> Deferred[QuotaInfo]:
        """Storage used by all the user's folders and the user's limit."""

    def set_quota(self, user: Principal, limit_kb: int) -> Deferred[None]:
        """Change the user's own storage limit (admins only; the session checks)."""

    def append(
        self,
        user: Principal,
        name: str,
        message: bytes,
        flags: frozenset[str],
        internal_date: datetime | None,
    ) -> Deferred[AppendResult]:
        """Store a message; MailboxError OVERQUOTA when it would exceed the quota."""


@dataclass(frozen=True, slots=True)
class RightsInfo:
    """RFC 4314 §3.7 LISTRIGHTS data: rights always granted, then independent groups."""

    required: str
    optional: tuple[str, ...]


@runtime_checkable
class FolderAccess(Protocol):
    """RFC 4314 ACL commands; a MailStore implementing this too gets CAPABILITY ACL.

    Identifiers are ``user``, ``group:<name>`` or ``anyone``; rights strings were
    checked by the session (``vpop3d.core.imaprights``). Refusals are MailboxError
    (NOPERM without the "a" right, NONEXISTENT for unknown or hidden mailboxes,
    CANNOT for unknown or refused identifiers).
    """

    def get_acl(self, user: Principal, name: str) -> Deferred[Sequence[tuple[str, str]]]:
        """(identifier, rights) pairs, the owner first."""

    def set_acl(self, user: Principal, name: str, identifier: str, rights: str) -> Deferred[None]:
        """Apply ``+rights``, ``-rights`` or replace with ``rights``."""

    def delete_acl(self, user: Principal, name: str, identifier: str) -> Deferred[None]: ...

    def list_rights(self, user: Principal, name: str, identifier: str) -> Deferred[RightsInfo]: ...

    def my_rights(self, user: Principal, name: str) -> Deferred[str]: ...
