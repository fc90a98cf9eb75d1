"""The outbound queue: one row per message, per-recipient delivery state.

States: ``pending`` (due at ``next_attempt_at``), ``deferred`` (failed temporarily,
retry at ``next_attempt_at``), ``delivered``, ``failed``. The queue holds one
reference on the message's blob until the entry is removed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select

from vpop3d.store import blobs as blob_refs
from vpop3d.store.tables import queue, queue_recipients


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    address: str
    route: str = ""  # JSON LAN-forward target; "" = normal MX/relay delivery
    notify: str = ""
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    kind: str
    sender: str
    size: int
    created_at: float
    recipients: tuple[tuple[str, str, int, str], ...]  # (address, state, attempts, last_error)


def enqueue(
    conn: Connection,
    *,
    blob_id: int,
    sender: str,
    size: int,
    recipients: Sequence[QueuedRecipient],
    kind: str = "internet",
    envid: str | None = None,
    ret: str | None = None,
    body_type: str | None = None,
    smtputf8: bool = False,
    source: str = "",
) -> int:
    """Add a message for outbound delivery; the caller holds one blob reference for it."""
    now = time.time()
    pk = conn.execute(
        insert(queue).values(
            kind=kind,
            blob_id=blob_id,
            sender=sender,
            size=size,
            envid=envid,
            ret=ret,
            body_type=body_type,
            smtputf8=smtputf8,
            source=source,
            created_at=now,
        )
    ).inserted_primary_key
    assert pk is not None
    queue_id = int(pk[0])
    for rcpt in recipients:
        conn.execute(
            insert(queue_recipients).values(
                queue_id=queue_id,
                address=rcpt.address,
                route=rcpt.route,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                last_error="",
                notify=rcpt.notify,
                orcpt=rcpt.orcpt,
                updated_at=now,
            )
        )
    return queue_id


def entries(conn: Connection, kind: str | None = None) -> list[QueueEntry]:
    query = select(queue).order_by(queue.c.id)
    if kind is not None:
        query = query.where(queue.c.kind == kind)
    result: list[QueueEntry] = []
    for q in conn.execute(query).all():
        rcpts = conn.execute(
            select(
                queue_recipients.c.address,
                queue_recipients.c.state,
                queue_recipients.c.attempts,
                queue_recipients.c.last_error,
            )
            .where(queue_recipients.c.queue_id == q.id)
            .order_by(queue_recipients.c.id)
        ).all()
        result.append(
            QueueEntry(
                id=int(q.id),
                kind=q.kind,
                sender=q.sender,
                size=int(q.size),
                created_at=float(q.created_at),
                recipients=tuple(
                    (r.address, r.state, int(r.attempts), r.last_error) for r in rcpts
                ),
            )
        )
    return result


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(queue)).scalar_one())


def remove(conn: Connection, queue_id: int) -> bool:
    blob_id = conn.execute(select(queue.c.blob_id).where(queue.c.id == queue_id)).scalar()
    if blob_id is None:
        return False
    conn.execute(delete(queue_recipients).where(queue_recipients.c.queue_id == queue_id))
    conn.execute(delete(queue).where(queue.c.id == queue_id))
    blob_refs.drop_ref(conn, int(blob_id))
    return True
