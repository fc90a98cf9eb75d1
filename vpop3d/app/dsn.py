"""Bounces and delay notices: build an RFC 3464 report and deliver it from ``<>``.

Blocking functions taking ``conn`` so the queue runner (and the CLI) create the
report in the same transaction that records the failure: a recipient is marked
failed and its bounce exists, or neither. Never for a null-sender message (RFC 5321
§6.1: no bounce loops) and only when the recipient's NOTIFY asks for it.

A local sender gets the report in their INBOX through ``mailstore.store_message``;
a remote one gets it through the outbound queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection
from twisted.logger import Logger

from vpop3d.app.mailstore import FolderTarget, store_message
from vpop3d.core.dsnformat import RecipientStatus, build_dsn, wants_notice
from vpop3d.store import blobs as blob_repo
from vpop3d.store import domains, users
from vpop3d.store import queue as queue_repo
from vpop3d.store.blobs import BlobStore

_log = Logger()


@dataclass(frozen=True, slots=True)
class Original:
    """What the report needs to know about the message it reports on."""

    blob_id: int
    sender: str
    created_at: float
    envid: str | None = None
    ret: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recipient's final or delayed state, plus its NOTIFY words."""

    status: RecipientStatus
    notify: str = ""


def emit(
    conn: Connection,
    blob_store: BlobStore,
    original: Original,
    outcomes: Sequence[Outcome],
    *,
    reporting_mta: str,
    now: float,
    will_retry_until: float | None = None,
) -> str | None:
    """Create one report for ``outcomes``; returns where it went, or None when none is due."""
    if not original.sender or original.sender == "<>":
        return None
    actions = {o.status.action for o in outcomes}
    kind = (
        "DELAY"
        if actions == {"delayed"}
        else "SUCCESS"
        if actions <= {"relayed", "delivered"}
        else "FAILURE"
    )
    wanted = [o.status for o in outcomes if wants_notice(o.notify, kind)]
    if not wanted:
        return None
    data = build_dsn(
        reporting_mta=reporting_mta,
        to=original.sender,
        original=blob_repo.read_bytes(conn, blob_store, original.blob_id),
        recipients=wanted,
        now=now,
        arrival=original.created_at,
        envid=original.envid,
        ret=original.ret,
        will_retry_until=will_retry_until,
    )
    return deliver_notice(conn, blob_store, original.sender, data)


def _local_user_id(conn: Connection, address: str) -> int | None:
    local, _, domain = address.rpartition("@")
    if not local or domains.by_name(conn, domain.lower()) is None:
        return None
    user = users.by_name(conn, local.lower())
    if user is None:
        user = users.by_name(conn, "postmaster")
    return None if user is None else user.id


def deliver_notice(conn: Connection, blob_store: BlobStore, to: str, data: bytes) -> str:
    """Put a ``<>`` message for ``to`` in a local INBOX or the outbound queue."""
    spool = blob_store.new_spool()
    spool.write(data)
    user_id = _local_user_id(conn, to)
    if user_id is not None:
        store_message(
            conn, blob_store, spool, [FolderTarget(user_id)], envelope_from="", envelope_to=[to]
        )
        _log.info("notice for <{to}> filed locally", to=to)
        return "local"
    blob_id = blob_store.commit(conn, spool, refs=1)
    queue_id = queue_repo.enqueue(
        conn,
        blob_id=blob_id,
        sender="",
        size=len(data),
        recipients=[queue_repo.QueuedRecipient(to)],
        kind="internet",
        source="dsn",
    )
    _log.info("notice for <{to}> queued as {id}", to=to, id=queue_id)
    return f"queue:{queue_id}"
