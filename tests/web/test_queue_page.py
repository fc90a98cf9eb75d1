"""Queue page: per-recipient state and last error, and the Bounce action (seed-2 §5)."""

from __future__ import annotations

from sqlalchemy import update

from vpop3d.store import queue
from vpop3d.store.tables import queue_recipients


def _enqueue(stack, *recipients):
    spool = stack.spool(b"Subject: hi\r\n\r\nbody\r\n")

    def run(conn):
        blob_id = stack.blobs.commit(conn, spool, refs=1)
        return queue.enqueue(
            conn,
            blob_id=blob_id,
            sender="fred@example.test",
            size=20,
            recipients=[queue.QueuedRecipient(r) for r in recipients],
        )

    return stack.db.run_sync(run)


def _defer(stack, address, error):
    stack.db.run_sync(
        lambda conn: conn.execute(
            update(queue_recipients)
            .where(queue_recipients.c.address == address)
            .values(state="deferred", attempts=3, last_error=error)
        )
    )


def test_queue_page_shows_each_recipient_state_and_last_error(admin, stack):
    """Each recipient has its own state pill, try count and last error."""
    _enqueue(stack, "a@remote.test", "b@remote.test")
    _defer(stack, "b@remote.test", "451 4.4.1 greylisted, try later")
    page = admin.get("/admin/queue.html").text
    assert 'data-state="pending">a@remote.test' in page
    assert 'data-state="deferred">b@remote.test' in page
    assert "3 tries" in page
    assert "Last error: 451 4.4.1 greylisted, try later" in page


def test_bounce_fails_open_recipients_and_reports_to_sender(admin, stack):
    """Bounce fails every open recipient, removes the entry and sends the sender a DSN."""
    stack.add_user("fred")
    queue_id = _enqueue(stack, "a@remote.test", "b@remote.test")
    _defer(stack, "a@remote.test", "421 4.3.2 busy")
    reply = admin.post(f"/admin/queue/{queue_id}/bounce", {"csrf": admin.csrf()})
    assert reply.code == 303
    page = admin.get("/admin/queue.html").text
    assert f"Message {queue_id} bounced: 2 recipient(s) failed" in page
    assert stack.db.run_sync(queue.entry, queue_id) is None
    dsn = _fred_inbox_or_queue(stack)
    assert dsn, "the sender got no failure report"


def _fred_inbox_or_queue(stack):
    from vpop3d.store import folders, messages, users

    def run(conn):
        fred = users.by_name(conn, "fred")
        assert fred is not None
        inbox = folders.inbox(conn, fred.id)
        queued = [e for e in queue.entries(conn) if "fred" in "".join(r[0] for r in e.recipients)]
        return messages.count(conn, inbox.id) + len(queued)

    return stack.db.run_sync(run)


def test_bounce_twice_or_unknown_is_refused_with_a_message(admin, stack):
    """A second bounce or an unknown id changes nothing and says why."""
    queue_id = _enqueue(stack, "a@remote.test")
    stack.db.run_sync(lambda conn: conn.execute(update(queue_recipients).values(state="delivered")))
    admin.post(f"/admin/queue/{queue_id}/bounce", {"csrf": admin.csrf()})
    assert "has no recipient left to bounce" in admin.get("/admin/queue.html").text
    admin.post("/admin/queue/999/bounce", {"csrf": admin.csrf()})
    assert "Message 999 is no longer in the queue" in admin.get("/admin/queue.html").text


def test_bounce_needs_the_csrf_token(admin, stack):
    """A bounce without the form's token is refused and the message stays queued."""
    queue_id = _enqueue(stack, "a@remote.test")
    assert admin.post(f"/admin/queue/{queue_id}/bounce", {}).code == 403
    assert stack.db.run_sync(queue.entry, queue_id) is not None
