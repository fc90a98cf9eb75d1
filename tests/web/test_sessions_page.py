"""Sessions page: per-listener connection counts and work in progress from leases."""

from __future__ import annotations

import time

from sqlalchemy import insert

from vpop3d.store import users
from vpop3d.store.tables import leases


class _CountingFactory:
    connection_count = 3


def test_sessions_page_lists_mailboxes_sends_and_collectors_in_progress(admin, stack):
    """Unexpired leases show as live sessions; expired ones do not."""
    fred_id = stack.add_user("fred")
    now = time.time()
    stack.db.run_sync(
        lambda conn: conn.execute(
            insert(leases),
            [
                {"name": f"maildrop:{fred_id}", "owner": "pop3-a", "expires_at": now + 60},
                {"name": "queue:17", "owner": "runner-1", "expires_at": now + 30},
                {"name": "collector:2", "owner": "coll-1", "expires_at": now + 30},
                {"name": "maildrop:999", "owner": "gone", "expires_at": now - 5},
            ],
        )
    )
    page = admin.get("/admin/sessions.html").text
    assert '<tr data-kind="maildrop"><td>Mailbox in use (POP3/IMAP)</td><td>fred</td>' in page
    assert "message 17" in page
    assert "collector 2" in page
    assert "gone" not in page
    assert stack.db.run_sync(users.by_id, fred_id).name == "fred"


def test_listener_counts_come_from_published_factories(admin, web_context):
    """A listener whose factory is published shows its count; others say not reported."""
    specs = [s for s in web_context.config.listeners if s.enabled]
    web_context.extras[f"listener.{specs[0].name}"] = _CountingFactory()
    page = admin.get("/admin/sessions.html").text
    assert f'data-listener="{specs[0].name}">3<' in page
    if len(specs) > 1:
        assert f'data-listener="{specs[1].name}"><span class="muted small">not reported' in page


def test_sessions_page_is_for_admins_only(new_client, stack):
    """Without a login the page redirects to the login page."""
    reply = new_client().get("/admin/sessions.html")
    assert reply.code == 303
