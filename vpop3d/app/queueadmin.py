"""Queue actions of the web admin beyond listing and deleting (seed-2 §5)."""

from __future__ import annotations

from sqlalchemy import Connection, update

from vpop3d.store.tables import queue_recipients

WAITING = ("pending", "deferred")


def retry_now(conn: Connection, queue_id: int, now: float) -> int:
    """Make a queued message's waiting recipients due at once (sent at the next run
    of its Connection); returns how many recipients that was."""
    result = conn.execute(
        update(queue_recipients)
        .where(queue_recipients.c.queue_id == queue_id, queue_recipients.c.state.in_(WAITING))
        .values(next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount)
