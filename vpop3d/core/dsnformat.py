"""RFC 3464 delivery status notifications as bytes (pure).

A multipart/report (RFC 6522) with a human-readable part, a message/delivery-status
part (per-message fields, then one block per recipient) and the original message
(message/rfc822) or only its header (text/rfc822-headers) as RET says (RFC 3461 §4.3).
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

# Above this size a bounce carries only the original header, whatever RET said.
FULL_RETURN_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's block in the report."""

    address: str
    action: str  # failed | delayed | delivered | relayed (RFC 3464 §2.3.3)
    status: str  # RFC 3463 code, e.g. 5.1.1
    diagnostic: str = ""  # the remote reply, e.g. "550 5.1.1 no such user"
    remote_mta: str | None = None
    orcpt: str | None = None  # "rfc822;addr"


def header_section(message: bytes) -> bytes:
    """The original's header section, up to and including the blank line."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message if message.endswith(b"\r\n") else message + b"\r\n"
    return message[: end + 4]


def _date(when: float) -> str:
    return email.utils.formatdate(when, localtime=False)


def _status_code(status: str, action: str) -> str:
    if status and status[0] in "245" and status.count(".") == 2:
        return status
    return {"delayed": "4.0.0", "relayed": "2.0.0", "delivered": "2.0.0"}.get(action, "5.0.0")


def _oneline(text: str) -> str:
    return " ".join(text.split())


def build_dsn(
    *,
    reporting_mta: str,
    to: str,
    original: bytes,
    recipients: Sequence[RecipientStatus],
    now: float,
    arrival: float,
    envid: str | None = None,
    ret: str | None = None,
    will_retry_until: float | None = None,
) -> bytes:
    """The whole bounce or delay notice, CRLF line ends, ready for ``<>`` delivery."""
    delayed = all(r.action == "delayed" for r in recipients)
    success = all(r.action in ("relayed", "delivered") for r in recipients)
    boundary = f"=_vpop3d_{secrets.token_hex(12)}"
    if delayed:
        subject = "Delivery Status Notification (Delay)"
    elif success:
        subject = "Delivery Status Notification (Success)"
    else:
        subject = "Undelivered Mail Returned to Sender"
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Date: {_date(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5: no autoresponder answers this
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
    ]
    if delayed:
        human = [
            f"This is the mail system at {reporting_mta}.",
            "",
            "Your message has not been delivered yet to the recipients below.",
            "The mail system will keep trying; you do not need to send it again.",
        ]
    elif success:
        human = [
            f"This is the mail system at {reporting_mta}.",
            "",
            "Your message was passed on to the recipients' mail servers below, which",
            "do not report delivery themselves (RFC 3461 relayed).",
        ]
    else:
        human = [
            f"This is the mail system at {reporting_mta}.",
            "",
            "Your message could not be delivered to one or more recipients.",
        ]
    human.append("")
    human.extend(f"<{r.address}>: {_oneline(r.diagnostic) or r.action}" for r in recipients)
    fields = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        fields.append(f"Original-Envelope-Id: {envid}")
    fields.append(f"Arrival-Date: {_date(arrival)}")
    for r in recipients:
        fields.append("")
        if r.orcpt:
            kind, _, address = r.orcpt.partition(";")
            fields.append(f"Original-Recipient: {kind};{address}")
        fields.append(f"Final-Recipient: rfc822; {r.address}")
        fields.append(f"Action: {r.action}")
        fields.append(f"Status: {_status_code(r.status, r.action)}")
        if r.remote_mta:
            fields.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.diagnostic:
            fields.append(f"Diagnostic-Code: smtp; {_oneline(r.diagnostic)}")
        fields.append(f"Last-Attempt-Date: {_date(now)}")
        if r.action == "delayed" and will_retry_until is not None:
            fields.append(f"Will-Retry-Until: {_date(will_retry_until)}")
    full = (ret or "").upper() != "HDRS" and len(original) <= FULL_RETURN_LIMIT
    returned = original if full else header_section(original)
    if not returned.endswith(b"\r\n"):
        returned += b"\r\n"
    eight_bit = any(byte > 127 for byte in returned)
    parts: list[bytes] = [
        "\r\n".join(head).encode() + b"\r\n\r\n",
        b"This is a MIME-encapsulated message.\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=us-ascii\r\n",
        b"Content-Description: Notification\r\n\r\n",
        "\r\n".join(human).encode("ascii", "replace") + b"\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: message/delivery-status\r\n",
        b"Content-Description: Delivery report\r\n\r\n",
        "\r\n".join(fields).encode("utf-8") + b"\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        (b"Content-Type: message/rfc822\r\n" if full else b"Content-Type: text/rfc822-headers\r\n"),
        b"Content-Description: Undelivered message\r\n",
        (b"Content-Transfer-Encoding: 8bit\r\n" if eight_bit else b""),
        b"\r\n",
        returned,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def wants_notice(notify: str, kind: str) -> bool:
    """RFC 3461 §4.1: NOTIFY absent means FAILURE (and DELAY at our discretion); NEVER none."""
    words = {w.strip().upper() for w in notify.split(",") if w.strip()}
    if not words:
        return kind in ("FAILURE", "DELAY")
    return "NEVER" not in words and kind in words
