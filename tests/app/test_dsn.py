"""RFC 3464 reports: structure, RET, NOTIFY, null sender, local vs queued delivery."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from sqlalchemy import Connection

from tests.support.stack import Stack
from vpop3d.app import dsn
from vpop3d.core.dsnformat import RecipientStatus, build_dsn, wants_notice
from vpop3d.store import blobs as blob_repo
from vpop3d.store import folders, messages, users
from vpop3d.store import queue as queue_repo

ORIGINAL = b"From: alice@example.test\r\nSubject: hello\r\n\r\nsecret body\r\n"
NOW = 2_000_000_000.0


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _build(ret: str | None = None, action: str = "failed") -> EmailMessage:
    return _parse(
        build_dsn(
            reporting_mta="mail.example.test",
            to="alice@example.test",
            original=ORIGINAL,
            recipients=[
                RecipientStatus(
                    "bob@x.test",
                    action,
                    "5.1.1" if action == "failed" else "4.4.1",
                    "550 5.1.1 no such user",
                    "mx.x.test",
                    "rfc822;Bob@x.test",
                )
            ],
            now=NOW,
            arrival=NOW - 60,
            envid="ENV1",
            ret=ret,
            will_retry_until=NOW + 3600,
        )
    )


def test_report_structure() -> None:
    """multipart/report with text, message/delivery-status and the returned message."""
    report = _build()
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Auto-Submitted"] == "auto-replied"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "message/rfc822",
    ]
    status = parts[1].as_bytes()
    for field in (
        b"Reporting-MTA: dns; mail.example.test",
        b"Original-Envelope-Id: ENV1",
        b"Original-Recipient: rfc822;Bob@x.test",
        b"Final-Recipient: rfc822; bob@x.test",
        b"Action: failed",
        b"Status: 5.1.1",
        b"Remote-MTA: dns; mx.x.test",
        b"Diagnostic-Code: smtp; 550 5.1.1 no such user",
    ):
        assert field in status
    assert b"secret body" in parts[2].as_bytes()


def test_ret_hdrs_returns_only_the_header() -> None:
    """RFC 3461 §4.3: RET=HDRS returns text/rfc822-headers without the body."""
    report = _build(ret="HDRS")
    last = list(report.iter_parts())[2]
    assert last.get_content_type() == "text/rfc822-headers"
    assert b"secret body" not in report.as_bytes()
    assert b"Subject: hello" in last.as_bytes()


def test_delay_report() -> None:
    """A delay notice says delayed and when retrying stops."""
    report = _build(action="delayed")
    assert "Delay" in report["Subject"]
    status = list(report.iter_parts())[1].as_bytes()
    assert b"Action: delayed" in status
    assert b"Will-Retry-Until:" in status


def test_notify_words() -> None:
    """RFC 3461 §4.1 NOTIFY: default failure+delay, NEVER none, explicit lists honoured."""
    assert wants_notice("", "FAILURE")
    assert wants_notice("", "DELAY")
    assert not wants_notice("NEVER", "FAILURE")
    assert not wants_notice("SUCCESS", "FAILURE")
    assert wants_notice("SUCCESS,FAILURE", "FAILURE")
    assert not wants_notice("FAILURE", "DELAY")


def _store_original(stack: Stack) -> int:
    spool = stack.spool(ORIGINAL)
    return stack.db.run_sync(lambda conn: stack.blobs.commit(conn, spool, refs=1))


def _outcome() -> dsn.Outcome:
    return dsn.Outcome(RecipientStatus("bob@x.test", "failed", "5.1.1", "550 5.1.1 no"))


def test_null_sender_gets_nothing(stack: Stack) -> None:
    """RFC 5321 §6.1: never a bounce for a message from <>."""
    blob_id = _store_original(stack)
    where = stack.db.run_sync(
        lambda conn: dsn.emit(
            conn,
            stack.blobs,
            dsn.Original(blob_id, "", NOW),
            [_outcome()],
            reporting_mta="mail.example.test",
            now=NOW,
        )
    )
    assert where is None
    assert stack.db.run_sync(queue_repo.count) == 0


def test_local_sender_gets_it_in_inbox(stack: Stack) -> None:
    """A local sender's bounce is filed in their INBOX with an empty return path."""
    stack.add_user("alice")
    blob_id = _store_original(stack)
    where = stack.db.run_sync(
        lambda conn: dsn.emit(
            conn,
            stack.blobs,
            dsn.Original(blob_id, "alice@example.test", NOW),
            [_outcome()],
            reporting_mta="mail.example.test",
            now=NOW,
        )
    )
    assert where == "local"

    def inbox(conn: Connection) -> list[bytes]:
        user = users.by_name(conn, "alice")
        assert user is not None
        folder = folders.inbox(conn, user.id)
        return [
            blob_repo.read_bytes(conn, stack.blobs, m.blob_id)
            for m in messages.in_folder(conn, folder.id)
        ]

    (bounce,) = stack.db.run_sync(inbox)
    assert b"Final-Recipient: rfc822; bob@x.test" in bounce


def test_remote_sender_gets_it_queued_from_null(stack: Stack) -> None:
    """A remote sender's bounce goes into the outbound queue from <>."""
    blob_id = _store_original(stack)
    where = stack.db.run_sync(
        lambda conn: dsn.emit(
            conn,
            stack.blobs,
            dsn.Original(blob_id, "carol@remote.test", NOW),
            [_outcome()],
            reporting_mta="mail.example.test",
            now=NOW,
        )
    )
    assert where is not None
    assert where.startswith("queue:")
    (entry,) = stack.db.run_sync(queue_repo.entries)
    assert (entry.sender, entry.recipients[0][0]) == ("", "carol@remote.test")
