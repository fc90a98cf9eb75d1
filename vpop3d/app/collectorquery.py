"""Download on reply to a Download query notice (seed-3 §4.6).

A Query rule leaves a message at the ISP and mails its recipients a notice
(``vpop3d.app.collectornotices``) whose Reply-To is ``query-<id>-<mac>@<local
domain>``: ``<id>`` is the collector and ``<mac>`` an HMAC-SHA256 of the collector
and the message's UIDL under a secret kept in the settings table, so the address
cannot be guessed or made for another message. When a local user replies, SMTP
delivery hands that recipient to :class:`QueryReplies` instead of routing it: the
UIDL gets the same Get flag the Messages tab's Download button sets, and the reply
itself goes into no mailbox.

Only a local sender counts: an SMTP-authenticated (or POP-before-SMTP) client, or
a client on the local network whose MAIL FROM is a local address. Anyone else, and
any address whose MAC matches no message still awaiting a decision, is refused at
RCPT like an unknown user, so a stranger can neither trigger downloads nor probe.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import Connection
from twisted.logger import Logger

from vpop3d.core.address import Mailbox
from vpop3d.core.mapping import DiscardTarget
from vpop3d.core.policy import Client, Disposition, RecipientDecision
from vpop3d.core.reply import Reply
from vpop3d.store import collectors as repo
from vpop3d.store import settings as settings_repo

__all__ = [
    "QUERY_SECRET",
    "QueryReplies",
    "ensure_secret",
    "grant",
    "parse_local_part",
    "reply_local_part",
]

QUERY_SECRET = "collectors.query_secret"  # noqa: S105 - a settings key, not a secret
_MAC_HEX = 24  # 96 bits: far beyond guessing through RCPT attempts
_LOCAL_PART = re.compile(rf"query-([1-9][0-9]{{0,9}})-([0-9a-f]{{{_MAC_HEX}}})", re.IGNORECASE)
_NOTE = "collector-query:"
# RFC 3463 X.1.1: the same reply an unknown local user gets, so nothing leaks.
UNKNOWN_QUERY = Reply(550, "5.1.1", "No such download query")
# RFC 3463 X.7.1: delivery not authorised.
NOT_LOCAL = Reply(550, "5.7.1", "Download query replies are accepted from local users only")


def mac(secret: str, collector_id: int, uidl: str) -> str:
    """The reply address's MAC for one queried message."""
    text = f"{collector_id}:{uidl}".encode()
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()[:_MAC_HEX]


def reply_local_part(secret: str, collector_id: int, uidl: str) -> str:
    return f"query-{collector_id}-{mac(secret, collector_id, uidl)}"


def parse_local_part(local: str) -> tuple[int, str] | None:
    """``(collector id, mac)`` of a query reply address's local part, else None."""
    found = _LOCAL_PART.fullmatch(local)
    if found is None or int(found.group(1)) > 2**31 - 1:
        return None
    return int(found.group(1)), found.group(2).lower()


def ensure_secret(conn: Connection) -> str:
    """The HMAC key, made on first use (in the notice sender's transaction)."""
    value = settings_repo.get(conn, QUERY_SECRET)
    if isinstance(value, str) and len(value) >= 32:
        return value
    value = secrets.token_hex(32)
    settings_repo.put(conn, QUERY_SECRET, value)
    return value


def _find(conn: Connection, collector_id: int, wanted: str) -> str | None:
    """The UIDL awaiting a decision whose MAC is ``wanted``."""
    secret = settings_repo.get(conn, QUERY_SECRET)
    if not isinstance(secret, str) or not secret or repo.by_id(conn, collector_id) is None:
        return None
    for key, row in repo.uidls(conn, collector_id).items():
        if row["disposition"] != "queried" or row["deleted"]:
            continue
        if hmac.compare_digest(mac(secret, collector_id, key), wanted):
            return key
    return None


def grant(conn: Connection, collector_id: int, wanted: str) -> str | None:
    """Set the Get flag of the queried message ``wanted`` names; its UIDL, or None."""
    key = _find(conn, collector_id, wanted)
    if key is not None:
        repo.set_flags(conn, collector_id, key, get=True, dele=None)
    return key


class QueryReplies:
    """The SMTP delivery hook: claims ``query-<id>-<mac>@<local domain>`` recipients."""

    _log = Logger()

    def __init__(self, database: Any, router: Any) -> None:
        self._db = database
        self._router = router

    async def decide(
        self, client: Client, sender: str, mailbox: Mailbox
    ) -> RecipientDecision | None:
        """None when ``mailbox`` is no query reply address (route it as usual); else
        accept it into no mailbox, or refuse it."""
        parsed = parse_local_part(mailbox.local)
        if parsed is None:
            return None
        collector_id, wanted = parsed
        key: str | None = await self._db.read(_find, collector_id, wanted)
        if key is None:
            return RecipientDecision(UNKNOWN_QUERY, notes=("no queried message for this token",))
        local_sender = client.authenticated or client.pop_user is not None
        if not local_sender and client.on_lan and sender:
            local_sender = bool(await self._router.is_local_address(sender))
        if not local_sender:
            return RecipientDecision(NOT_LOCAL, notes=("query reply from a non-local sender",))
        note = f"{_NOTE}{collector_id}:{wanted}"
        return RecipientDecision(None, Disposition.LOCAL, (DiscardTarget(),), notes=(note,))

    async def accepted(self, decisions: list[tuple[str, Any, RecipientDecision]]) -> None:
        """End of DATA: grant every claimed query (the message is then discarded)."""
        for _recipient, _params, decision in decisions:
            for note in decision.notes:
                if not note.startswith(_NOTE):
                    continue
                ident, _sep, wanted = note[len(_NOTE) :].partition(":")
                key = await self._db.write(grant, int(ident), wanted)
                self._log.info(
                    "collector {id}: download query reply for {key}",
                    id=ident,
                    key=key if key is not None else "(no longer waiting)",
                )
