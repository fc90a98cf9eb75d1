"""Dashboard, Services (listeners, certificate paste) and Queue pages."""

from __future__ import annotations

import datetime

import pytest
import trustme

from vpop3d.store import queue
from webadmin import certificates


def _enqueue(stack, recipient="x@remote.test"):
    spool = stack.spool(b"Subject: hi\r\n\r\nbody\r\n")

    def run(conn):
        blob_id = stack.blobs.commit(conn, spool, refs=1)
        return queue.enqueue(
            conn,
            blob_id=blob_id,
            sender="fred@example.test",
            size=20,
            recipients=[queue.QueuedRecipient(recipient)],
        )

    return stack.db.run_sync(run)


def _pem_pair():
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.test")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems).decode()
    return chain, cert.private_key_pem.bytes().decode()


def test_dashboard_shows_counts_and_checklist(admin, stack):
    """The dashboard has the user and queue counts and the settings checklist."""
    _enqueue(stack)
    page = admin.get("/admin/index.html")
    assert page.code == 200
    assert 'id="tile-users">2<' in page.text
    assert 'id="tile-queue">1<' in page.text
    assert "Important settings checklist" in page.text
    assert "Local Domains &amp; Default Domain" in page.body.decode()


def test_services_lists_listeners_read_only(admin):
    """Services shows every listener of the boot configuration with its encryption."""
    page = admin.get("/admin/services.html")
    assert page.code == 200
    for text in ("pop3s", "995", "SSL/TLS", "STARTTLS (optional)", "5108"):
        assert text in page.text


def test_certificate_paste_installs_a_valid_chain(admin, web_context):
    """A matching PEM chain and key are saved for the next start."""
    chain, key = _pem_pair()
    reply = admin.post(
        "/admin/services/certificate", {"csrf": admin.csrf(), "chain": chain, "key": key}
    )
    assert reply.location == "/admin/services.html"
    page = admin.get("/admin/services.html")
    assert "saved. Restart vpop3d to use it." in page.text
    tls_dir = web_context.config.tls_dir
    assert (tls_dir / certificates.CERT_FILE).read_text().strip() == chain.strip()
    assert (tls_dir / certificates.KEY_FILE).stat().st_mode & 0o077 == 0
    assert "mail.example.test" in page.text


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("garbage", "must hold PEM text"),
        ("badkey", "not valid PEM"),
        ("mismatch", "does not belong to the first certificate"),
    ],
)
def test_certificate_paste_refuses_bad_pem(admin, web_context, broken, message):
    """Check 38: malformed PEM or a key of another certificate is refused on save."""
    chain, key = _pem_pair()
    if broken == "garbage":
        chain = "hello"
    elif broken == "badkey":
        key = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
    else:
        key = _pem_pair()[1]
    admin.post("/admin/services/certificate", {"csrf": admin.csrf(), "chain": chain, "key": key})
    assert message in admin.get("/admin/services.html").text
    assert not (web_context.config.tls_dir / certificates.CERT_FILE).exists()


def test_expired_certificate_is_refused():
    """A certificate past its end date is refused."""
    chain, key = _pem_pair()
    later = datetime.datetime(3001, 1, 1, tzinfo=datetime.UTC)
    with pytest.raises(certificates.CertificateError, match="expired"):
        certificates.validate(chain, key, later)


def test_queue_lists_and_deletes(admin, stack):
    """The queue page lists a queued message; Delete removes it."""
    queue_id = _enqueue(stack)
    page = admin.get("/admin/queue.html")
    assert "x@remote.test" in page.text
    assert "fred@example.test" in page.text
    admin.post(f"/admin/queue/{queue_id}/delete", {"csrf": admin.csrf()})
    assert stack.db.run_sync(queue.entries) == []
    assert "removed from the queue" in admin.get("/admin/queue.html").text


def test_admin_access_networks_are_validated_and_saved(admin, web_context):
    """Admin networks must parse; loopback keeps access; the list is stored as a setting."""
    admin.post("/admin/services/admin-access", {"csrf": admin.csrf(), "networks": "10.0.0.0/33"})
    assert "use addresses or networks" in admin.get("/admin/services.html").text
    admin.post("/admin/services/admin-access", {"csrf": admin.csrf(), "networks": "192.168.1.0/24"})
    assert web_context.settings.get("web.admin_allowed_networks") == ["192.168.1.0/24"]
    assert admin.get("/admin/services.html").code == 200  # loopback is always allowed


def test_queue_retry_makes_recipients_due(admin, stack):
    """Retry makes a deferred recipient due now; an unknown id is explained."""
    from sqlalchemy import update

    from vpop3d.store.tables import queue_recipients

    queue_id = _enqueue(stack)
    stack.db.run_sync(
        lambda conn: conn.execute(
            update(queue_recipients).values(state="deferred", next_attempt_at=9e12)
        )
    )
    admin.post(f"/admin/queue/{queue_id}/retry", {"csrf": admin.csrf()})
    assert "will be tried at the next send" in admin.get("/admin/queue.html").text
    due = stack.db.read_sync(
        lambda conn: conn.execute(queue_recipients.select()).one().next_attempt_at
    )
    assert due < 9e12
    admin.post("/admin/queue/999/retry", {"csrf": admin.csrf()})
    assert "has no recipient waiting" in admin.get("/admin/queue.html").text
