"""Notices a Download Rule sends instead of (or besides) downloading (seed-3 §4.3, §4.6):
the download query, the deletion warning, and the Reject action's delivery-failure
report to the sender.

A query notice tells its readers that the message waits at the ISP and how it gets
downloaded: a reply to the notice (its Reply-To is a ``query-<id>-<mac>`` address
that ``vpop3d.app.collectorquery`` takes at SMTP time), or the administrator's
Download button on the collector's Messages tab; both set the UIDL's Get flag. The
notice carries ``X-VPOP3-Query: <collector id>:<uidl>:<mac>`` (§4.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from twisted.logger import Logger

from vpop3d.app import dsn
from vpop3d.app.collectorquery import ensure_secret, mac, reply_local_part
from vpop3d.app.delivery import Delivery, DeliverySpool
from vpop3d.app.downloadrules import Verdict
from vpop3d.core.dsnformat import RecipientStatus, build_dsn, header_section
from vpop3d.core.mapping import LocalDomains, Source
from vpop3d.store.blobs import BlobStore

__all__ = ["CollectorNotices"]


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class CollectorNotices:
    """Sends one collector run's rule notices through the normal delivery path."""

    _log = Logger()

    def __init__(
        self,
        delivery: Delivery,
        database: Any,
        blobs: BlobStore,
        hostname: str,
        *,
        local_domains: LocalDomains | None = None,
        collector_id: int | None = None,
        reply_domain: str = "",
    ) -> None:
        self._delivery = delivery
        self._db = database
        self._blobs = blobs
        self._hostname = hostname
        # The collector's Accepted Domains count as local, so a notice to a message's
        # recipient (fred@isp-domain) reaches the local user the message was for.
        self._local = local_domains
        self._collector_id = collector_id
        self._reply_domain = reply_domain  # a local domain for the query reply address

    async def _send(self, to: Sequence[str], subject: str, text: str, head: bytes, when: float,
                    extra: str = "") -> None:  # fmt: skip
        if not to:
            self._log.warn("download rule notice {s!r} has no recipient", s=subject)
            return
        body = (
            f"From: Mail Collector <MAILER-DAEMON@{self._hostname}>\r\n"
            f"To: {', '.join(f'<{a}>' for a in to)}\r\n"
            f"Subject: {_printable(subject)[:300]}\r\n"
            f"Date: {format_datetime(datetime.fromtimestamp(when, UTC))}\r\n"
            f"Auto-Submitted: auto-generated\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n\r\n"
        ).encode() + header_section(head)
        spool = DeliverySpool(None)
        spool.write(body)
        try:
            await self._delivery.inject(
                "",
                list(to),
                spool,
                source=Source.SMTP,
                collector_id=self._collector_id,
                local_domains=self._local,
                use_from_mappings=False,
            )
        except Exception:  # noqa: BLE001 - the rule's effect stands without its notice
            self._log.failure("download rule notice {s!r} failed", s=subject)

    async def query(self, config: Any, key: str, head: bytes, to: Sequence[str], rule: str,
                    delay_days: int, when: float) -> None:  # fmt: skip
        """§4.3 Query/Redirect Query/Copy Query: the headers, and how to get it; a
        reply to the notice downloads it (§4.6)."""
        subject = _subject(head)
        how = (
            "To have it downloaded, reply to this message (the reply itself is not\r\n"
            "delivered to anyone), or ask your mail administrator to press Download for\r\n"
            f"it on the Messages tab of the Mail Collector {config.name}."
        )
        extra = f"X-VPOP3-Query: {config.id}:{_printable(key)}\r\n"
        if self._reply_domain and key:
            secret: str = await self._db.write(ensure_secret)
            local = reply_local_part(secret, config.id, key)
            extra = (
                f"Reply-To: <{local}@{self._reply_domain}>\r\n"
                f"X-VPOP3-Query: {config.id}:{_printable(key)}:{mac(secret, config.id, key)}\r\n"
            )
        else:
            how = (
                "To have it downloaded, ask your mail administrator to press Download for it\r\n"
                f"on the Messages tab of the Mail Collector {config.name}."
            )
        text = (
            f"Mail Collector {config.name} left the message below on the mail server\r\n"
            f"because of the download rule {rule!r}.\r\n\r\n{how} Without that it\r\n"
            f"is deleted from the server after {delay_days} days.\r\n\r\n"
            "Its headers were:"
        )
        await self._send(to, f"Download query: {subject}", text, head, when, extra)

    async def deleted(self, config: Any, head: bytes, to: Sequence[str], rule: str,
                      when: float) -> None:  # fmt: skip
        """§4.3 Delete and Warn (and its variants): a deletion notice."""
        text = (
            f"Mail Collector {config.name} deleted the message below from the mail server\r\n"
            f"without downloading it, because of the download rule {rule!r}.\r\n\r\n"
            "Its headers were:"
        )
        await self._send(to, f"Message deleted: {_subject(head)}", text, head, when)

    async def reject(self, config: Any, head: bytes, sender: str, orig: Sequence[str],
                     verdict: Verdict, when: float) -> None:  # fmt: skip
        """§4.3 Reject: an RFC 3464 failure report to the message's sender, never to
        the null path (RFC 5321 §6.1). The UIDL is remembered so it is sent once."""
        if not sender or sender == "<>":
            return
        why = f"rejected by download rule {verdict.rule!r} of Mail Collector {config.name}"
        statuses = [
            RecipientStatus(address, "failed", "5.7.1", diagnostic=f"550 5.7.1 {why}")
            for address in (orig or [f"{config.username or 'unknown'}@{config.server}"])
        ]
        data = build_dsn(
            reporting_mta=self._hostname,
            to=sender,
            original=head,
            recipients=statuses,
            now=when,
            arrival=when,
            ret="HDRS",
        )
        try:
            where = await self._db.write(dsn.deliver_notice, self._blobs, sender, data)
        except Exception:  # noqa: BLE001 - the message stays at the server either way
            self._log.failure("reject notice for <{s}> failed", s=sender)
            return
        self._log.info("download rule reject: report for <{s}> {w}", s=sender, w=where)


def _subject(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"subject:"):
            return line[8:].decode("utf-8", "replace").strip()
    return "(no subject)"
