"""Folder sharing set up in the browser, used over real IMAP (features-b §4, seed-2 §3.1).

The admin shares alice's ``Shared`` folder with group ``sales`` on the Shared folders
page in headless Chromium; bob, a secondary member of sales, then logs in over IMAP
(imaplib against the running server) and reads alice's message under
``#users/alice/Shared``; carol, outside the group, sees nothing.
"""

from __future__ import annotations

import imaplib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from tests.support.server import ServerProcess, add_user
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.test_browser_admin import _body, _button, _by, _click, _login, _shot
from vpop3d.app import imapacl
from vpop3d.store import groups, users

pytestmark = pytest.mark.network

MESSAGE = b"From: alice@example.test\r\nSubject: price list 2026\r\n\r\nNew prices attached.\r\n"
SHARED = "#users/alice/Shared"


def _office(server: ServerProcess) -> None:
    add_user(server, "boss", "boss-pw1", is_admin=True)
    for name in ("alice", "bob", "carol"):
        add_user(server, name)

    def setup(conn: Connection) -> None:
        sales = groups.add(conn, "sales")
        bob = users.by_name(conn, "bob")
        assert bob is not None
        users.set_secondary_groups(conn, bob.id, [sales.id])

    server.db.run_sync(setup)


def _imap(server: ServerProcess, name: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
    client.login(name, "secret")
    return client


def _names(client: imaplib.IMAP4, pattern: str) -> list[str]:
    status, lines = client.list('""', pattern)
    assert status == "OK"
    return [
        line.decode().rsplit(' "/" ', 1)[1].strip('"') for line in lines if isinstance(line, bytes)
    ]


def _select(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.select import Select

    Select(driver.find_element(_by("ID"), element_id)).select_by_value(value)


def test_admin_shares_in_browser_and_bob_reads_over_imap(
    server: ServerProcess,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Share alice's Shared with group sales in the browser; bob LISTs, SELECTs and
    FETCHes alice's message under #users/alice/Shared; carol sees no shared folder."""
    _office(server)
    alice = _imap(server, "alice")
    assert alice.create("Shared")[0] == "OK"
    assert alice.append("Shared", "", None, MESSAGE)[0] == "OK"
    alice.logout()
    bob = _imap(server, "bob")
    assert _names(bob, "#users/*") == []  # nothing shared yet

    base = f"http://127.0.0.1:{server.ports['http']}"
    _login(browser, base, "boss", "boss-pw1")
    browser.get(base + "/admin/users.html")
    _click(browser, browser.find_element(_by("CSS_SELECTOR"), "nav a[href='/admin/sharing.html']"))
    assert "Nothing is shared yet." in _body(browser)
    _select(browser, "owner-pick", "alice")
    _click(browser, browser.find_element(_by("ID"), "show-folders"))
    _select(browser, "folder", "Shared")
    _select(browser, "grantee", "group:sales")
    browser.find_element(_by("CSS_SELECTOR"), "input[name=preset][value=read_seen]").click()
    _shot(browser, tmp_path, "sharing-form")
    _click(browser, _button(browser, "Share"))
    page = _body(browser)
    assert "they see it as #users/alice/Shared" in page
    row = browser.find_element(_by("CSS_SELECTOR"), "#shares-grid tbody tr")
    assert "sales" in row.text
    assert "read + mark seen" in row.text
    _shot(browser, tmp_path, "sharing-list")
    assert server.db.read_sync(imapacl.folder_acl, "alice", "Shared")[1] == (
        "group:sales",
        "lrs",
    )

    assert sorted(_names(bob, "#users/*")) == ["#users/alice", SHARED]
    status, data = bob.select(f'"{SHARED}"')
    assert (status, data) == ("OK", [b"1"])
    status, fetched = bob.fetch("1", "(BODY[])")
    assert status == "OK"
    part = fetched[0]
    assert isinstance(part, tuple)
    assert part[1] == MESSAGE
    bob.logout()

    carol = _imap(server, "carol")
    assert _names(carol, "#users/*") == []
    assert carol.select(f'"{SHARED}"')[0] == "NO"
    carol.logout()
