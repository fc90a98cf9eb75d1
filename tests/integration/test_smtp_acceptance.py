"""Spec seed-1 acceptance checks 17-27 end to end: smtplib against a real server.

Each test sets up users, domains and mappings in the server's database, sends over
SMTP on loopback, and looks in the mailboxes. The router caches its data for about
two seconds, so set-up is followed by a short wait before sending.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, add_user, start_server
from vpop3d.app import accounts
from vpop3d.store import blobs, folders, messages, queue, settings, users
from vpop3d.store.blobs import FileBlobStore

pytestmark = pytest.mark.network


@pytest.fixture
def mta(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """A server with only SMTP, local domains a.test and b.test."""
    process = start_server(tmp_path, database_url, listeners=("smtp",))
    process.db.run_sync(accounts.add_domain, "a.test")
    process.db.run_sync(accounts.add_domain, "b.test")
    yield process
    process.stop()


def _settle() -> None:
    time.sleep(2.5)  # the router's data cache (about 2 s)


def _inbox(server: ServerProcess, name: str) -> list[bytes]:
    user = server.db.read_sync(users.by_name, name)
    assert user is not None
    store = FileBlobStore(server.data_dir)
    inbox = server.db.read_sync(folders.inbox, user.id)
    return [
        server.db.read_sync(blobs.read_bytes, store, m.blob_id)
        for m in server.db.read_sync(messages.in_folder, inbox.id)
    ]


def _send(server: ServerProcess, rcpts: list[str], body: bytes, sender: str = "x@remote.test"):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as client:
        client.ehlo("client.remote.test")
        return client.sendmail(sender, rcpts, body)


def _rcpt(server: ServerProcess, rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as client:
        client.ehlo("client.remote.test")
        client.mail("x@remote.test")
        return client.rcpt(rcpt)


def test_check_17_envelope_routing_and_received_first(mta: ServerProcess) -> None:
    """Header To: bill but envelope joe: only joe gets it, and Received: comes first."""
    add_user(mta, "bill")
    add_user(mta, "joe")
    _settle()
    _send(mta, ["joe@a.test"], b"To: bill@a.test\r\nSubject: s\r\n\r\nbody\r\n")
    assert _inbox(mta, "bill") == []
    [stored] = _inbox(mta, "joe")
    assert stored.startswith(b"Received: ")


def test_check_18_null_sender_failure_makes_no_bounce(mta: ServerProcess) -> None:
    """A relay failure for MAIL FROM:<> is refused outright and queues no bounce."""
    _settle()
    with smtplib.SMTP("127.0.0.1", mta.ports["smtp"], timeout=30) as client:
        client.ehlo("client.remote.test")
        client.mail("<>")
        code, _ = client.rcpt("nosuch@a.test")
    assert code == 550
    assert mta.db.read_sync(queue.count) == 0


def test_check_19_user_reachable_at_every_local_domain(mta: ServerProcess) -> None:
    """fred@a.test and fred@b.test both land in fred's mailbox."""
    add_user(mta, "fred")
    _settle()
    _send(mta, ["fred@a.test"], b"Subject: 1\r\n\r\n1\r\n")
    _send(mta, ["fred@b.test"], b"Subject: 2\r\n\r\n2\r\n")
    assert len(_inbox(mta, "fred")) == 2


def test_check_20_21_mapping_redirect_and_copy(mta: ServerProcess) -> None:
    """fred -> kate redirects; adding fred -> fred as well gives each one copy."""
    add_user(mta, "fred")
    add_user(mta, "kate")
    mta.db.run_sync(accounts.add_mapping, "fred", ["kate"])
    _settle()
    _send(mta, ["fred@a.test"], b"Subject: redirect\r\n\r\nx\r\n")
    assert (len(_inbox(mta, "fred")), len(_inbox(mta, "kate"))) == (0, 1)
    mta.db.run_sync(accounts.add_mapping, "fred", ["fred"])
    _settle()
    _send(mta, ["fred@a.test"], b"Subject: copy\r\n\r\nx\r\n")
    assert (len(_inbox(mta, "fred")), len(_inbox(mta, "kate"))) == (1, 2)


def test_check_22_alias(mta: ServerProcess) -> None:
    """sales -> fred: RCPT sales@a.test gets 250 and the mail reaches fred."""
    add_user(mta, "fred")
    mta.db.run_sync(accounts.add_mapping, "sales", ["fred"])
    _settle()
    assert _rcpt(mta, "sales@a.test")[0] == 250
    _send(mta, ["sales@a.test"], b"Subject: s\r\n\r\nx\r\n")
    assert len(_inbox(mta, "fred")) == 1


def test_check_23_per_domain_split(mta: ServerProcess) -> None:
    """fred@a.test -> fred.a and fred@b.test -> fred.b reach only their own user."""
    add_user(mta, "fred.a")
    add_user(mta, "fred.b")
    mta.db.run_sync(accounts.add_mapping, "fred@a.test", ["fred.a"])
    mta.db.run_sync(accounts.add_mapping, "fred@b.test", ["fred.b"])
    _settle()
    _send(mta, ["fred@a.test"], b"Subject: a\r\n\r\na\r\n")
    _send(mta, ["fred@b.test"], b"Subject: b\r\n\r\nb\r\n")
    assert [len(_inbox(mta, "fred.a")), len(_inbox(mta, "fred.b"))] == [1, 1]
    assert b"Subject: a" in _inbox(mta, "fred.a")[0]


def test_check_24_foreign_address_mapping(mta: ServerProcess) -> None:
    """someone@elsewhere.test -> fred is accepted from an outside client and delivered."""
    add_user(mta, "fred")
    mta.db.run_sync(accounts.add_mapping, "someone@elsewhere.test", ["fred"])
    _settle()
    _send(mta, ["someone@elsewhere.test"], b"Subject: f\r\n\r\nx\r\n")
    assert len(_inbox(mta, "fred")) == 1


def test_check_25_wildcards(mta: ServerProcess) -> None:
    """sup*@a.test catches support@; s?les@a.test matches sales@ but not saales@."""
    add_user(mta, "fred")
    add_user(mta, "kate")
    mta.db.run_sync(accounts.add_mapping, "sup*@a.test", ["fred"])
    mta.db.run_sync(accounts.add_mapping, "s?les@a.test", ["kate"])
    _settle()
    _send(mta, ["support@a.test"], b"Subject: w\r\n\r\nx\r\n")
    assert len(_inbox(mta, "fred")) == 1
    assert _rcpt(mta, "sales@a.test")[0] == 250
    assert _rcpt(mta, "saales@a.test")[0] == 550


def test_check_26_catch_all_spares_existing_users(mta: ServerProcess) -> None:
    """~@a.test -> kate takes unknown addresses; fred@a.test still goes only to fred."""
    add_user(mta, "fred")
    add_user(mta, "kate")
    mta.db.run_sync(accounts.add_mapping, "~@a.test", ["kate"])
    _settle()
    _send(mta, ["nosuch@a.test"], b"Subject: c\r\n\r\nx\r\n")
    _send(mta, ["fred@a.test"], b"Subject: f\r\n\r\nx\r\n")
    assert (len(_inbox(mta, "fred")), len(_inbox(mta, "kate"))) == (1, 1)


def test_check_27_remote_mapping_queues_for_internet(mta: ServerProcess) -> None:
    """kate -> *REMOTE: a local user's message to kate@a.test is queued, not refused."""
    add_user(mta, "fred", "pw-fred")
    mta.db.run_sync(accounts.add_mapping, "kate", ["*REMOTE"])
    mta.db.run_sync(settings.put, "smtp.require_auth", False)
    _settle()
    with smtplib.SMTP("127.0.0.1", mta.ports["smtp"], timeout=30) as client:
        client.ehlo("client.example.test")
        client.starttls()
        client.ehlo("client.example.test")
        client.login("fred", "pw-fred")
        client.sendmail("fred@a.test", ["kate@a.test"], b"Subject: r\r\n\r\nx\r\n")
    entries = mta.db.read_sync(queue.entries)
    assert [r[0] for e in entries for r in e.recipients] == ["kate@a.test"]


def test_vrfy_expn_off_by_default_then_allowed_for_local_nets(mta: ServerProcess) -> None:
    """VRFY answers 252 until the admin enables it; then 250/550 from a Local Nets client."""
    add_user(mta, "fred")
    _settle()
    with smtplib.SMTP("127.0.0.1", mta.ports["smtp"], timeout=30) as client:
        client.ehlo("client.example.test")
        assert client.verify("fred@a.test")[0] == 252
    mta.db.run_sync(settings.put, "smtp.vrfy_expn_enabled", True)
    mta.restart()  # settings reach a running server within seconds; a restart is certain
    _settle()
    with smtplib.SMTP("127.0.0.1", mta.ports["smtp"], timeout=30) as client:
        client.ehlo("client.example.test")
        assert client.verify("fred@a.test") == (250, b"2.1.5 <fred@a.test>")
        assert client.verify("nosuch@a.test")[0] == 550
