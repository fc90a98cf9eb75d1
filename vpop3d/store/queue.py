"""The outbound queue: one row per message, per-recipient delivery state.

States: ``pending`` (due at ``next_attempt_at``), ``deferred`` (failed temporarily,
retry at ``next_attempt_at``), ``delivered``, ``failed``. The queue holds one
reference on the message's blob until the entry is removed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update

from vpop3d.store import blobs as blob_refs
from vpop3d.store import leases
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
    now: float | None = None,
    auth_user: str | None = None,
) -> int:
    """Add a message for outbound delivery; the caller holds one blob reference for it.

    ``now`` (default: the wall clock) stamps creation and first due time.
    """
    now = time.time() if now is None else now
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
            auth_user=auth_user,
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


# ------------------------------------------------------------------ the runner's side

OPEN_STATES = ("pending", "deferred")
LEASE_PREFIX = "queue:"


@dataclass(frozen=True, slots=True)
class DueRecipient:
    id: int
    address: str
    route: str
    notify: str
    orcpt: str | None
    attempts: int
    state: str
    last_error: str = ""
    next_attempt_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ClaimedEntry:
    """A queue entry with the recipients the caller may act on."""

    id: int
    kind: str
    blob_id: int
    sender: str
    size: int
    envid: str | None
    ret: str | None
    body_type: str | None
    smtputf8: bool
    source: str
    created_at: float
    warned_at: float | None
    held: bool
    recipients: tuple[DueRecipient, ...]
    auth_user: str | None = None


def _recipient(r: object) -> DueRecipient:
    return DueRecipient(
        id=int(r.id),  # type: ignore[attr-defined]
        address=r.address,  # type: ignore[attr-defined]
        route=r.route,  # type: ignore[attr-defined]
        notify=r.notify,  # type: ignore[attr-defined]
        orcpt=r.orcpt,  # type: ignore[attr-defined]
        attempts=int(r.attempts),  # type: ignore[attr-defined]
        state=r.state,  # type: ignore[attr-defined]
        last_error=r.last_error,  # type: ignore[attr-defined]
        next_attempt_at=float(r.next_attempt_at),  # type: ignore[attr-defined]
    )


def _entry(conn: Connection, queue_id: int, *, due_at: float | None) -> ClaimedEntry | None:
    q = conn.execute(select(queue).where(queue.c.id == queue_id)).first()
    if q is None:
        return None
    query = select(queue_recipients).where(queue_recipients.c.queue_id == queue_id)
    if due_at is not None:
        query = query.where(
            queue_recipients.c.state.in_(OPEN_STATES),
            queue_recipients.c.next_attempt_at <= due_at,
        )
    rcpts = conn.execute(query.order_by(queue_recipients.c.id)).all()
    return ClaimedEntry(
        id=int(q.id),
        kind=q.kind,
        blob_id=int(q.blob_id),
        sender=q.sender,
        size=int(q.size),
        envid=q.envid,
        ret=q.ret,
        body_type=q.body_type,
        smtputf8=bool(q.smtputf8),
        source=q.source,
        created_at=float(q.created_at),
        warned_at=None if q.warned_at is None else float(q.warned_at),
        held=bool(q.held),
        recipients=tuple(_recipient(r) for r in rcpts),
        auth_user=q.auth_user,
    )


def entry(conn: Connection, queue_id: int) -> ClaimedEntry | None:
    """One entry with all its recipients (any state)."""
    return _entry(conn, queue_id, due_at=None)


def claim_due(
    conn: Connection,
    *,
    now: float,
    owner: str,
    ttl: float,
    kind: str | None = None,
    limit: int = 200,
) -> list[ClaimedEntry]:
    """Entries with recipients due by ``now``, each leased to ``owner`` for ``ttl`` s.

    The lease (``queue:<id>``) keeps a second process, or an overlapping run of this
    one, from sending the same entry; a killed holder's lease simply expires.
    """
    query = (
        select(queue.c.id)
        .join(queue_recipients, queue_recipients.c.queue_id == queue.c.id)
        .where(
            queue_recipients.c.state.in_(OPEN_STATES),
            queue_recipients.c.next_attempt_at <= now,
            queue.c.held.is_not(True),
        )
        .group_by(queue.c.id)
        .order_by(queue.c.id)
        .limit(limit)
    )
    if kind is not None:
        query = query.where(queue.c.kind == kind)
    claimed: list[ClaimedEntry] = []
    for (queue_id,) in conn.execute(query).all():
        if not leases.acquire(conn, f"{LEASE_PREFIX}{queue_id}", owner, now, ttl):
            continue
        found = _entry(conn, int(queue_id), due_at=now)
        if found is not None and found.recipients:
            claimed.append(found)
    return claimed


def release(conn: Connection, queue_id: int, owner: str) -> None:
    leases.release(conn, f"{LEASE_PREFIX}{queue_id}", owner)


def _set_state(
    conn: Connection, ids: Sequence[int], state: str, text: str, now: float, next_at: float
) -> None:
    if not ids:
        return
    conn.execute(
        update(queue_recipients)
        .where(queue_recipients.c.id.in_(list(ids)))
        .values(
            state=state,
            attempts=queue_recipients.c.attempts + 1,
            last_error=text[:2000],
            next_attempt_at=next_at,
            updated_at=now,
        )
    )


def mark_delivered(conn: Connection, ids: Sequence[int], text: str, now: float) -> None:
    """The remote host answered 250 for these: never send them again."""
    _set_state(conn, ids, "delivered", text, now, now)


def mark_failed(conn: Connection, ids: Sequence[int], text: str, now: float) -> None:
    _set_state(conn, ids, "failed", text, now, now)


def mark_deferred(
    conn: Connection, ids: Sequence[int], text: str, now: float, next_at: float
) -> None:
    _set_state(conn, ids, "deferred", text, now, next_at)


def set_warned(conn: Connection, queue_id: int, now: float) -> None:
    conn.execute(update(queue).where(queue.c.id == queue_id).values(warned_at=now))


def set_held(conn: Connection, queue_id: int, held: bool) -> bool:
    return conn.execute(update(queue).where(queue.c.id == queue_id).values(held=held)).rowcount > 0


def finish(conn: Connection, queue_id: int) -> bool:
    """Remove the entry once no recipient is pending or deferred; True if removed."""
    open_count = conn.execute(
        select(func.count())
        .select_from(queue_recipients)
        .where(
            queue_recipients.c.queue_id == queue_id,
            queue_recipients.c.state.in_(OPEN_STATES),
        )
    ).scalar_one()
    if open_count:
        return False
    return remove(conn, queue_id)


def sweep_finished(conn: Connection) -> int:
    """Remove entries left with no open recipient (a run killed after its last 250)."""
    open_ids = (
        select(queue_recipients.c.queue_id)
        .where(queue_recipients.c.state.in_(OPEN_STATES))
        .scalar_subquery()
    )
    done = conn.execute(select(queue.c.id).where(queue.c.id.not_in(open_ids))).scalars().all()
    return sum(1 for queue_id in done if remove(conn, int(queue_id)))


def retry(conn: Connection, queue_id: int, now: float) -> int:
    """Force Retry (seed-2 §5.1): open recipients become due now; returns how many."""
    return int(
        conn.execute(
            update(queue_recipients)
            .where(
                queue_recipients.c.queue_id == queue_id,
                queue_recipients.c.state.in_(OPEN_STATES),
            )
            .values(next_attempt_at=now, updated_at=now)
        ).rowcount
    )


def waiting(conn: Connection, kind: str = "internet") -> int:
    """Messages with at least one open recipient (the schedule's "messages waiting")."""
    return int(
        conn.execute(
            select(func.count(func.distinct(queue.c.id)))
            .select_from(queue.join(queue_recipients, queue_recipients.c.queue_id == queue.c.id))
            .where(queue.c.kind == kind, queue_recipients.c.state.in_(OPEN_STATES))
        ).scalar_one()
    )


def next_due(conn: Connection, kind: str | None = None) -> float | None:
    """When the earliest open recipient becomes due (None: nothing open)."""
    query = (
        select(func.min(queue_recipients.c.next_attempt_at))
        .select_from(queue.join(queue_recipients, queue_recipients.c.queue_id == queue.c.id))
        .where(queue_recipients.c.state.in_(OPEN_STATES), queue.c.held.is_not(True))
    )
    if kind is not None:
        query = query.where(queue.c.kind == kind)
    value = conn.execute(query).scalar()
    return None if value is None else float(value)
