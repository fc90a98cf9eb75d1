"""In headless Chromium against a real server: import users from a CSV file, the
Permissions tab, an IP access table, bouncing a queued message, the Sessions page."""

from __future__ import annotations

import pytest

from tests.support.server import add_user
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.test_browser_admin import _body, _button, _by, _click, _login, _shot
from vpop3d.store import queue, users
from vpop3d.store.blobs import make_blob_store

pytestmark = pytest.mark.network


def _held_message(server) -> int:
    """A queued message the runner leaves alone (held), so the test can act on it."""
    blobs = make_blob_store("file", server.data_dir)
    spool = blobs.new_spool()
    spool.write(b"Subject: stuck\r\n\r\nbody\r\n")
    spool.finish()

    def run(conn):
        blob_id = blobs.commit(conn, spool, refs=1)
        queue_id = queue.enqueue(
            conn,
            blob_id=blob_id,
            sender="",  # no report for a null sender: only the bounce itself is checked
            size=24,
            recipients=[queue.QueuedRecipient("x@remote.test")],
        )
        queue.set_held(conn, queue_id, True)
        return queue_id

    return int(server.db.run_sync(run))


def test_import_access_queue_and_sessions_pages(server, browser, tmp_path):  # noqa: F811
    """CSV import reports bad lines and imports nothing, then imports a good file; an
    access row is validated and added; Bounce empties a queued message; Sessions shows."""
    base = f"http://127.0.0.1:{server.ports['http']}"
    add_user(server, "boss", "boss-pw1", is_admin=True)
    _login(browser, base, "boss", "boss-pw1")

    bad = tmp_path / "bad.csv"
    bad.write_text("User Id,Admin,Password\r\nann,1,ann-pw1\r\nbob,2,bob-pw1\r\n")
    browser.get(base + "/admin/users.html")
    _click(browser, browser.find_element(_by("ID"), "import-users"))
    browser.find_element(_by("ID"), "file").send_keys(str(bad))
    _click(browser, browser.find_element(_by("ID"), "preview-button"))
    assert "Import Preview (first 5 lines of file)" in _body(browser)
    _click(browser, browser.find_element(_by("ID"), "import-button"))
    assert (
        "line 3: Admin must be 1 or 0, not '2'"
        in browser.find_element(_by("ID"), "import-problems").text
    )
    assert server.db.read_sync(users.by_name, "ann") is None
    _shot(browser, tmp_path, "11-import-errors")

    good = tmp_path / "good.csv"
    good.write_text("User Id,Admin,Password\r\nann,1,ann-pw1\r\nbob,0,bob-pw1\r\n")
    browser.get(base + "/admin/users/import.html")
    browser.find_element(_by("ID"), "file").send_keys(str(good))
    _click(browser, browser.find_element(_by("ID"), "preview-button"))
    _click(browser, browser.find_element(_by("ID"), "import-button"))
    assert "Import done: 2 created" in _body(browser)
    assert server.db.read_sync(users.by_name, "ann").is_admin

    # Edit User's Permissions tab: the Internet mail switches are saved.
    browser.get(base + "/admin/users/bob/edit.html")
    browser.find_element(_by("ID"), "allow_send_internet").click()
    _click(browser, _button(browser, "Submit"))
    assert "User bob has been saved." in _body(browser)
    bob = server.db.read_sync(users.by_name, "bob")
    assert not bob.allow_send_internet
    assert bob.allow_receive_internet

    browser.get(base + "/admin/services.html")
    _click(browser, browser.find_element(_by("LINK_TEXT"), "POP3"))
    assert "POP3 IP Access Restrictions" in browser.find_element(_by("TAG_NAME"), "h1").text
    browser.find_element(_by("ID"), "address").send_keys("10.0.0.300")
    _click(browser, browser.find_element(_by("ID"), "access-add-button"))
    assert "bad IP address" in _body(browser)
    browser.find_element(_by("ID"), "address").send_keys("10.1.2.57/24")
    _click(browser, browser.find_element(_by("ID"), "access-add-button"))
    assert "was stored as 10.1.2.0/24" in _body(browser)
    rows = browser.find_elements(_by("CSS_SELECTOR"), "#access-grid tbody tr")
    assert [r.get_attribute("data-row") for r in rows] == [
        "Block Routers",
        "Allow 10.1.2.0/24",
        "Allow Local Networks",
    ]
    _shot(browser, tmp_path, "12-access")

    queue_id = _held_message(server)
    browser.get(base + "/admin/queue.html")
    assert "held" in browser.find_element(_by("ID"), f"queue-{queue_id}").text
    browser.execute_script("window.confirm = () => true;")
    _click(browser, browser.find_element(_by("ID"), f"bounce-{queue_id}"))
    assert f"Message {queue_id} bounced: 1 recipient(s) failed" in _body(browser)
    assert server.db.read_sync(queue.entry, queue_id) is None
    _shot(browser, tmp_path, "13-queue-bounced")

    _click(browser, browser.find_element(_by("XPATH"), "//nav//a[@title='Sessions']"))
    assert "Connections per service" in _body(browser)
    _shot(browser, tmp_path, "14-sessions")
    assert _button(browser, "Log off")
