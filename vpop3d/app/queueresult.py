"""What a queue run did and how its outcomes are recorded (with their DSNs).

``settle_entry`` runs inside the one transaction that ends a run for an entry:
permanent failures and expired deferrals are marked failed together with their
bounce, other deferrals get their next try from the retry gaps, and one delay
notice goes out once the warn-after time has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from vpop3d.app import connectors as config
from vpop3d.app import dsn
from vpop3d.core.dsnformat import RecipientStatus
from vpop3d.core.reply import Reply
from vpop3d.store import queue as queue_repo
from vpop3d.store.queue import ClaimedEntry, DueRecipient


@dataclass
class RunReport:
    """What one run did (for logs, the last-result string and tests)."""

    attempted: int = 0
    delivered: int = 0
    deferred: int = 0
    failed: int = 0
    connected: bool = False
    notices: int = 0
    text: str = ""
    last_error: str = ""
    claimed: int = 0


@dataclass
class Ledger:
    """Per-entry outcomes of one run, settled in one transaction at the end."""

    deferred: dict[int, tuple[DueRecipient, Reply, str | None]] = field(default_factory=dict)
    failed: dict[int, tuple[DueRecipient, Reply, str | None]] = field(default_factory=dict)
    delivered: set[int] = field(default_factory=set)
    relayed: dict[int, tuple[DueRecipient, str]] = field(default_factory=dict)  # NOTIFY=SUCCESS


@dataclass(frozen=True, slots=True)
class Policy:
    """How a lane retries and how a session is limited."""

    retry_minutes: tuple[int, ...]
    max_retry_hours: float
    warn_after_hours: float
    max_rcpt_msg: int = 0
    max_rcpt_session: int = 0
    max_msgs_session: int = 0
    next_host_on_transient: bool = True
    rate_msgs: tuple[int, int] = (0, 0)
    rate_rcpts: tuple[int, int] = (0, 0)
    rate_key: int | None = None  # connection id whose send history the rates count


def merge(first: RunReport, more: RunReport) -> RunReport:
    """Add a later batch's counts to a report."""
    return RunReport(
        attempted=first.attempted + more.attempted,
        delivered=first.delivered + more.delivered,
        deferred=first.deferred + more.deferred,
        failed=first.failed + more.failed,
        connected=first.connected or more.connected,
        notices=first.notices + more.notices,
        text=more.text,
        last_error=more.last_error or first.last_error,
        claimed=more.claimed,
    )


def relayed_notice(
    conn: Connection,
    blob_store: Any,
    entry: ClaimedEntry,
    relayed: list[tuple[DueRecipient, str]],
    now: float,
    hostname: str,
) -> int:
    """One "relayed" report for recipients whose server could not report success."""
    outcomes = [
        dsn.Outcome(
            RecipientStatus(rcpt.address, "relayed", "2.0.0", "", remote, rcpt.orcpt), rcpt.notify
        )
        for rcpt, remote in relayed
    ]
    original = dsn.Original(entry.blob_id, entry.sender, entry.created_at, entry.envid, entry.ret)
    return (
        1 if dsn.emit(conn, blob_store, original, outcomes, reporting_mta=hostname, now=now) else 0
    )


def settle_entry(
    conn: Connection,
    blob_store: Any,
    entry: ClaimedEntry,
    failed: list[tuple[DueRecipient, Reply, str | None]],
    deferred: list[tuple[DueRecipient, Reply, str | None]],
    policy: Policy,
    now: float,
    hostname: str,
    report: RunReport,
) -> int:
    """Record one entry's failures and deferrals, with its DSNs (blocking)."""
    expired_at = entry.created_at + policy.max_retry_hours * 3600
    final: list[tuple[DueRecipient, Reply, str | None]] = list(failed)
    later: list[tuple[DueRecipient, Reply, str | None]] = []
    for item in deferred:
        if now >= expired_at:
            rcpt, reply, remote = item
            # RFC 3463 4.4.7: delivery time expired, reported as a failure.
            final.append((rcpt, Reply(reply.code, "4.4.7", reply.text), remote))
        else:
            later.append(item)
    for rcpt, reply, _remote in final:
        queue_repo.mark_failed(conn, [rcpt.id], reply.text, now)
    for rcpt, reply, _remote in later:
        next_at = now + config.retry_delay(policy.retry_minutes, rcpt.attempts + 1)
        queue_repo.mark_deferred(conn, [rcpt.id], reply.text, now, next_at)
    report.failed += len(final)
    report.deferred += len(later)
    original = dsn.Original(entry.blob_id, entry.sender, entry.created_at, entry.envid, entry.ret)
    notices = 0
    if final:
        outcomes = [
            dsn.Outcome(
                RecipientStatus(
                    rcpt.address,
                    "failed",
                    reply.enhanced or f"{str(reply.code)[0]}.0.0",
                    f"{reply.code} {reply.text}" if reply.code else reply.text,
                    remote,
                    rcpt.orcpt,
                ),
                rcpt.notify,
            )
            for rcpt, reply, remote in final
        ]
        if dsn.emit(conn, blob_store, original, outcomes, reporting_mta=hostname, now=now):
            notices += 1
    warn_at = entry.created_at + policy.warn_after_hours * 3600
    if later and policy.warn_after_hours > 0 and entry.warned_at is None and now >= warn_at:
        outcomes = [
            dsn.Outcome(
                RecipientStatus(
                    rcpt.address,
                    "delayed",
                    reply.enhanced if reply.enhanced.startswith("4") else "4.0.0",
                    f"{reply.code} {reply.text}",
                    remote,
                    rcpt.orcpt,
                ),
                rcpt.notify,
            )
            for rcpt, reply, remote in later
        ]
        if dsn.emit(
            conn,
            blob_store,
            original,
            outcomes,
            reporting_mta=hostname,
            now=now,
            will_retry_until=expired_at,
        ):
            notices += 1
        queue_repo.set_warned(conn, entry.id, now)
    return notices
