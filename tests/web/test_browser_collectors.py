"""Headless Chromium against a real server: the administrator adds a POP3 Mail
Collector in the browser, presses Collect now, and the message waiting at the "ISP"
(a second vpop3d store serving POP3 in this test process) lands in fred's mailbox
and its UIDL shows on the Messages tab.

The browser is driven from a worker thread so the reactor keeps serving the ISP's
POP3 listener while Selenium waits for pages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.integration.test_collectors_loopback import isp_stack, mail
from tests.integration.test_pop3_loopback import deliver, inbox_ids, listen
from tests.support.server import ServerProcess, add_user
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.test_browser_admin import _body, _by, _click, _login, _shot
from vpop3d.store import collectors as repo
from vpop3d.store import connectors, folders, messages, users
from vpop3d.store import settings as settings_repo

pytestmark = pytest.mark.network

_F = TypeVar("_F", bound=Callable[..., Any])
ensure_deferred = cast(Callable[[_F], _F], pytest_twisted.ensureDeferred)


def _fred_count(server: ServerProcess) -> int:
    def count(conn: Any) -> int:
        user = users.by_name(conn, "fred")
        assert user is not None
        return len(messages.pop3_listing(conn, folders.inbox(conn, user.id).id))

    return int(server.db.read_sync(count))


def _type(driver: Any, element_id: str, text: str) -> None:
    field = driver.find_element(_by("ID"), element_id)
    field.clear()
    field.send_keys(text)


def _drive(driver: Any, server: ServerProcess, isp_port: int, shots: Path) -> dict[str, Any]:
    """Everything the person does in the browser (runs in a worker thread)."""
    base = f"http://127.0.0.1:{server.ports['http']}"
    _login(driver, base, "boss", "Boss-pw-1")
    driver.get(base + "/admin/collectors.html")
    assert "No Mail Collector yet" in _body(driver)
    driver.find_element(_by("NAME"), "name").send_keys("MyISP")
    _click(driver, driver.find_element(_by("ID"), "collector-new"))
    assert "New Mail Collector: Download from a POP3 Server" in _body(driver)

    _type(driver, "server", "127.0.0.1")
    _type(driver, "port", "not a port")
    _type(driver, "username", "box")
    _type(driver, "password", "secret")
    _type(driver, "accepted_domains", "a.test")
    _type(driver, "leave_days", "3")
    _click(driver, driver.find_element(_by("ID"), "collector-save"))
    error = driver.find_element(_by("ID"), "form-error").text
    assert "Port must be a whole number" in error  # explained; the form keeps the values
    assert driver.find_element(_by("ID"), "server").get_attribute("value") == "127.0.0.1"
    _type(driver, "port", str(isp_port))
    _type(driver, "password", "secret")  # never sent back to the browser
    _click(driver, driver.find_element(_by("ID"), "collector-save"))
    assert "Mail Collector MyISP added." in _body(driver)
    _shot(driver, shots, "collector-added")

    _click(driver, driver.find_element(_by("ID"), "collect-now"))
    assert "Collecting now with MyISP" in _body(driver)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _fred_count(server) < 1:
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    row: dict[str, Any] = {}
    while time.monotonic() < deadline and not str(row.get("last_result")).startswith("OK"):
        found: dict[str, Any] | None = server.db.read_sync(repo.by_name, "MyISP")
        row = found or {}
        time.sleep(0.2)
    assert row, "the collector is gone"
    driver.get(f"{base}/admin/collectors/{row['id']}/messages.html")
    _shot(driver, shots, "collector-messages")
    page = _body(driver)
    driver.get(f"{base}/admin/collectors/rules.html")
    driver.find_element(_by("ID"), "rule-name").send_keys("no spam")
    driver.find_element(_by("NAME"), "cond_field").send_keys("Subject")
    driver.find_element(_by("NAME"), "cond_data").send_keys("spam")
    _click(driver, driver.find_element(_by("ID"), "rule-save"))
    assert "Download rule no spam saved." in _body(driver)
    assert "1 condition(s)" in _body(driver)
    _shot(driver, shots, "collector-rules")
    return {"row": row, "messages_page": page, "uidls": server.db.read_sync(repo.uidls, row["id"])}


@ensure_deferred
async def test_add_pop3_collector_collect_now_and_see_the_uidl(
    server: ServerProcess,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Add a POP3 collector in the browser (a bad port is explained first), press
    Collect now: the message reaches fred's INBOX once, stays at the ISP (leave on
    server 3 days) and its UIDL is listed as downloaded on the Messages tab."""
    add_user(server, "fred")
    add_user(server, "boss", "Boss-pw-1", is_admin=True)
    server.db.run_sync(settings_repo.put, "wizard.dont_ask", True)
    server.db.run_sync(connectors.ensure_default)
    isp = isp_stack(tmp_path)
    box = isp.add_user("box")
    deliver(isp, box, mail("fred@a.test", n=1))
    loop = await listen(isp)
    try:
        seen = await deferToThread(_drive, browser, server, loop.port, tmp_path)
    finally:
        await loop.stop()
        isp.db.stop()
    assert _fred_count(server) == 1
    assert len(inbox_ids(isp, box)) == 1  # left on the server for 3 days
    assert str(seen["row"]["last_result"]).startswith("OK: 1 listed, 1 downloaded")
    [uidl] = seen["uidls"]
    assert seen["uidls"][uidl]["stored"]
    page = seen["messages_page"]
    assert uidl in page
    assert "downloaded" in page
    assert "message 1" in page  # the Subject column
