"""The Setup Wizard in headless Chromium against a real server (spec checks 4 and 5)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.server import add_user
from tests.web.browser import browser  # noqa: F401  (fixture)
from tests.web.test_browser_admin import _body, _by, _click, _login, _logout, _shot
from vpop3d.store import connectors, domains

pytestmark = pytest.mark.network


def _fill(driver: Any, field_id: str, value: str) -> None:
    element = driver.find_element(_by("ID"), field_id)
    element.clear()
    element.send_keys(value)


def _choose(driver: Any, name: str, value: str) -> None:
    driver.find_element(_by("CSS_SELECTOR"), f"input[name={name}][value='{value}']").click()


def _select(driver: Any, field_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(_by("ID"), field_id)).select_by_value(value)


def _next(driver: Any) -> None:
    _click(driver, driver.find_element(_by("ID"), "wizard-next"))


def _title(driver: Any) -> str:
    return str(driver.find_element(_by("ID"), "wizard-title").text)


def test_checks_4_and_5_setup_wizard(server, browser, tmp_path):  # noqa: F811
    """The first admin login offers the wizard; Skip + Don't ask again stops it;
    ?firstconfig=1 reopens page 1; Cancel on page 6 saves nothing; the seven pages
    then Finish create TestISP's Connection, Sender, Collector, domains and schedule."""
    base = f"http://127.0.0.1:{server.ports['http']}"
    add_user(server, "boss", "boss-pw1", is_admin=True)
    _login(browser, base, "boss", "boss-pw1")
    assert "Don't ask again" in _body(browser)
    _shot(browser, tmp_path, "20-wizard-offer")
    browser.find_element(_by("ID"), "dont_ask").click()
    _click(browser, browser.find_element(_by("ID"), "wizard-skip"))
    _logout(browser)
    _login(browser, base, "boss", "boss-pw1")
    assert "Dashboard" in browser.find_element(_by("TAG_NAME"), "h1").text

    def snapshot() -> Any:
        return server.db.read_sync(
            lambda conn: (
                connectors.list_connections(conn),
                connectors.list_schedule(conn),
                sorted(d.name for d in domains.list_all(conn)),
            )
        )

    for attempt in ("cancel", "finish"):
        before = snapshot()
        browser.get(base + "/admin/index.html?firstconfig=1")
        assert _title(browser) == "Setup Wizard (Page 1 of 7)"
        _shot(browser, tmp_path, "21-wizard-page1")
        _next(browser)
        assert _title(browser) == "Setup Wizard (Page 2 of 7)"
        _fill(browser, "isp_name", "TestISP")
        _next(browser)
        _choose(browser, "send_method", "relay")
        _fill(browser, "relay_servers", "127.0.0.1:2525")
        browser.find_element(_by("ID"), "relay_auth").click()
        _fill(browser, "relay_username", "isp-user")
        _fill(browser, "relay_password", "isp-pass")
        _shot(browser, tmp_path, "22-wizard-page3")
        _next(browser)
        assert _title(browser) == "Setup Wizard (Page 4 of 7)"
        _select(browser, "collect", "pop3")
        _fill(browser, "pop3_server", "pop.isp.test")
        _select(browser, "pop3_auth", "apop")
        _fill(browser, "pop3_username", "acct")
        _fill(browser, "pop3_password", "acct-pw")
        _select(browser, "routing", "parse")
        _fill(browser, "accepted_domains", "a.test;b.test")
        _shot(browser, tmp_path, "23-wizard-page4")
        _next(browser)
        _fill(browser, "local_domains", "a.test;b.test")
        _next(browser)
        assert _title(browser) == "Setup Wizard (Page 6 of 7)"
        _choose(browser, "times", "24h")
        _choose(browser, "days", "all")
        _choose(browser, "interval", "10")
        assert snapshot() == before  # nothing saved before Finish
        if attempt == "cancel":
            _click(browser, browser.find_element(_by("ID"), "wizard-cancel"))
            assert "nothing was changed" in _body(browser)
            assert snapshot() == before
            continue
        _next(browser)
        assert _title(browser) == "Setup Wizard (Page 7 of 7)"
        _shot(browser, tmp_path, "24-wizard-page7")
        _click(browser, browser.find_element(_by("ID"), "wizard-finish"))
        assert "basic configuration has been created" in _body(browser)

    # The Next Steps say to enable scheduling on the Schedule page.
    browser.get(base + "/admin/connectors.html")
    assert "Connection: TestISP" in _body(browser)
    browser.find_element(_by("ID"), "schedule-enabled").click()
    _click(browser, browser.find_element(_by("CSS_SELECTOR"), "#schedule-switch button"))
    assert "Scheduling enabled." in _body(browser)
    _shot(browser, tmp_path, "25-connectors")
    browser.set_window_size(390, 844)  # a phone
    browser.get(base + "/admin/users.html")
    _shot(browser, tmp_path, "26-users-phone")

    conns, schedule, names = snapshot()
    assert [c["name"] for c in conns] == ["TestISP"]
    senders = server.db.read_sync(connectors.list_senders)
    assert [s["connection_id"] for s in senders] == [conns[0]["id"]]
    assert names == ["a.test", "b.test"]
    assert len(schedule) == 1
    assert schedule[0]["interval_min"] == 10
