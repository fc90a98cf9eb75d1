"""Admin actions on the outgoing queue (seed-2 §5): list, show, retry, delete, bounce.

Blocking functions taking ``conn`` (run them with ``db.run_sync`` from the CLI or
``db.write`` from the web admin). A bounce fails every open recipient and sends
one DSN, in one transaction, exactly as a 5xx from the remote server would.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from vpop3d.app import dsn
from vpop3d.core.dsnformat import RecipientStatus
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import BlobStore
from vpop3d.store.queue import ClaimedEntry, DueRecipient


class QueueError(LookupError):
    """No such queue entry."""


@dataclass(frozen=True, slots=True)
class QueueLine:
    """One row of the queue listing."""

    id: int
    kind: str
    sender: str
    size: int
    created_at: float
    held: bool
    open: int
    recipients: tuple[DueRecipient, ...]


def list_entries(conn: Connection) -> list[QueueLine]:
    lines: list[QueueLine] = []
    for summary in queue_repo.entries(conn):
        entry = queue_repo.entry(conn, summary.id)
        if entry is None:
            continue
        lines.append(
            QueueLine(
                entry.id,
                entry.kind,
                entry.sender,
                entry.size,
                entry.created_at,
                entry.held,
                sum(1 for r in entry.recipients if r.state in queue_repo.OPEN_STATES),
                entry.recipients,
            )
        )
    return lines


def show(conn: Connection, queue_id: int) -> ClaimedEntry:
    entry = queue_repo.entry(conn, queue_id)
    if entry is None:
        raise QueueError(f"no queue entry {queue_id}")
    return entry


def retry(conn: Connection, queue_id: int, now: float) -> int:
    """Force Retry: open recipients are due now; returns how many (seed-2 §5.1)."""
    show(conn, queue_id)
    return queue_repo.retry(conn, queue_id, now)


def delete(conn: Connection, queue_id: int) -> None:
    """Drop the entry silently (no DSN)."""
    if not queue_repo.remove(conn, queue_id):
        raise QueueError(f"no queue entry {queue_id}")


def hold(conn: Connection, queue_id: int, held: bool) -> None:
    if not queue_repo.set_held(conn, queue_id, held):
        raise QueueError(f"no queue entry {queue_id}")


def bounce(
    conn: Connection,
    blob_store: BlobStore,
    queue_id: int,
    *,
    reporting_mta: str,
    now: float,
    reason: str = "deleted by the administrator",
) -> int:
    """Fail every open recipient with one DSN to the sender; returns how many failed."""
    entry = show(conn, queue_id)
    open_rcpts = [r for r in entry.recipients if r.state in queue_repo.OPEN_STATES]
    if not open_rcpts:
        return 0
    text = f"5.0.0 {reason}" + (
        f" (last error: {open_rcpts[0].last_error})" if open_rcpts[0].last_error else ""
    )
    queue_repo.mark_failed(conn, [r.id for r in open_rcpts], text, now)
    dsn.emit(
        conn,
        blob_store,
        dsn.Original(entry.blob_id, entry.sender, entry.created_at, entry.envid, entry.ret),
        [
            dsn.Outcome(
                RecipientStatus(r.address, "failed", "5.0.0", f"550 {text}", None, r.orcpt),
                r.notify,
            )
            for r in open_rcpts
        ],
        reporting_mta=reporting_mta,
        now=now,
    )
    queue_repo.finish(conn, queue_id)
    return len(open_rcpts)
