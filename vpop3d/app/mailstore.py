"""Putting message bodies into users' folders: the one primitive every inbound path uses.

SMTP delivery, POP3 collectors, IMAP APPEND, webmail "save to Sent" and bounces all
end here: a finished :class:`~vpop3d.store.blobs.Spool` becomes one blob referenced
by one message row per target folder, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from vpop3d.store import folders, messages
from vpop3d.store.blobs import BlobStore, Spool
from vpop3d.store.rows import Message


@dataclass(frozen=True, slots=True)
class FolderTarget:
    """Deliver to this user's folder (INBOX unless named)."""

    user_id: int
    folder: str = folders.INBOX
    flags: int = 0


def store_message(
    conn: Connection,
    blob_store: BlobStore,
    spool: Spool,
    targets: Sequence[FolderTarget],
    *,
    extra_refs: int = 0,
    internal_date: int | None = None,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    summary: str | None = None,
) -> tuple[int, list[Message]]:
    """Commit ``spool`` once and file it in every target folder (blocking, in a transaction).

    ``extra_refs`` reserves blob references for other holders created in the same
    transaction (outbound queue entries). Returns (blob id, stored rows).
    """
    blob_id = blob_store.commit(conn, spool, refs=len(targets) + extra_refs)
    stored: list[Message] = []
    for target in targets:
        folder = folders.ensure(conn, target.user_id, target.folder)
        stored.append(
            messages.insert_message(
                conn,
                folder.id,
                blob_id,
                spool.size,
                internal_date=internal_date,
                flags=target.flags,
                envelope_from=envelope_from,
                envelope_to=envelope_to,
                summary=summary,
            )
        )
    return blob_id, stored
