"""End to end in headless Chromium against a real server: spec checks 1-3 and 35,
adding a user who then receives mail, a mapping, a group cell, a certificate paste."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.server import add_user
from tests.web.browser import browser  # noqa: F401  (fixture)
from vpop3d.store import groups, mappings, users

pytestmark = pytest.mark.network

LOGIN_TEXTS = (
    "Username",
    "Password",
    "Remember me next time I connect",
    "LOG ON",
    "Forgotten Password",
    "Please note that JavaScript and Cookies are required in order to log on.",
)


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _click(driver: Any, element: Any) -> None:
    """Click something that loads a new page, and wait until it has."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element(_by("TAG_NAME"), "html")
    element.click()

    def replaced(_driver: Any) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or chromedriver's "node not in document"
            return True
        return False

    WebDriverWait(driver, 10).until(replaced)
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _button(driver: Any, text: str) -> Any:
    return driver.find_element(_by("XPATH"), f"//button[text()='{text}']")


def _body(driver: Any) -> str:
    return str(driver.find_element(_by("TAG_NAME"), "body").text)


def _login(driver: Any, base: str, name: str, password: str) -> None:
    driver.get(base + "/admin/index.html")
    driver.find_element(_by("ID"), "username").send_keys(name)
    driver.find_element(_by("ID"), "password").send_keys(password)
    _click(driver, driver.find_element(_by("ID"), "logon"))


def _shot(driver: Any, tmp_path: Path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / f"{name}.png"))


def _logout(driver: Any) -> None:
    _click(driver, _button(driver, "Log off"))


def _wait_for(condition: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_checks_1_2_and_admin_pages(server, browser, tmp_path):  # noqa: F811
    """Login page texts; postmaster/admin refused with a wrong password, then must change
    it; users, mappings, groups, local mail, services and queue pages work in the browser."""
    base = f"http://127.0.0.1:{server.ports['http']}"
    browser.get(base + "/admin/index.html")
    body = _body(browser)
    for text in LOGIN_TEXTS:
        assert text in body
    _shot(browser, tmp_path, "01-login")

    _login(browser, base, "postmaster", "wrong")
    assert "Login failed" in _body(browser)

    _login(browser, base, "postmaster", "admin")
    assert browser.current_url.endswith("/admin/password.html")
    _shot(browser, tmp_path, "02-change-password")
    browser.find_element(_by("ID"), "current").send_keys("admin")
    browser.find_element(_by("ID"), "new").send_keys("Better-pw1")
    browser.find_element(_by("ID"), "confirm").send_keys("Better-pw1")
    _click(browser, _button(browser, "Change password"))
    assert "Setup Wizard" in browser.find_element(_by("TAG_NAME"), "h1").text
    browser.find_element(_by("ID"), "dont_ask").click()
    _click(browser, browser.find_element(_by("ID"), "wizard-skip"))
    assert "Dashboard" in browser.find_element(_by("TAG_NAME"), "h1").text
    _shot(browser, tmp_path, "03-dashboard")

    # Add a user through the form; a bad confirmation is explained first.
    browser.get(base + "/admin/users/new.html")
    browser.find_element(_by("ID"), "name").send_keys("kate")
    browser.find_element(_by("ID"), "password").send_keys("kate-pw1")
    browser.find_element(_by("ID"), "confirm").send_keys("other")
    _click(browser, _button(browser, "Add user"))
    assert "are different" in browser.find_element(_by("ID"), "form-error").text
    browser.find_element(_by("ID"), "password").send_keys("kate-pw1")
    browser.find_element(_by("ID"), "confirm").send_keys("kate-pw1")
    _click(browser, _button(browser, "Add user"))
    assert "User kate has been created." in _body(browser)
    assert server.db.read_sync(users.by_name, "kate") is not None

    # The new user receives mail, and the grid shows it in the Inbox column.
    def send() -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
                smtp.sendmail(
                    "someone@remote.test", ["kate@example.test"], b"Subject: hi\r\n\r\nhello\r\n"
                )
        except smtplib.SMTPRecipientsRefused:
            return False  # the router's cache has not seen kate yet
        return True

    assert _wait_for(send)
    browser.get(base + "/admin/users.html?name=kate")
    row = browser.find_element(_by("XPATH"), "//tr[td/a[text()='kate']]")
    assert row.find_elements(_by("CSS_SELECTOR"), "td.num")[0].text == "1"
    browser.get(base + "/admin/users.html")
    _button(browser, "Show Filters").click()
    _shot(browser, tmp_path, "04-users")

    browser.get(base + "/admin/mappings.html")
    browser.find_element(_by("ID"), "pattern").send_keys("sales")
    browser.find_element(_by("ID"), "targets").send_keys("kate")
    _click(browser, _button(browser, "New mapping"))
    assert "Mapping for sales added." in _body(browser)
    assert [m.pattern for m in server.db.read_sync(mappings.list_all)] == ["sales"]
    _shot(browser, tmp_path, "05-mappings")

    browser.get(base + "/admin/groups.html")
    browser.find_element(_by("ID"), "group-name").send_keys("office")
    _click(browser, _button(browser, "New"))
    cell = browser.find_element(
        _by("CSS_SELECTOR"), "#groups-grid button.tri[data-field=allow_receive_internet]"
    )
    cell.click()  # greyed (no override) -> checked
    _wait_for(lambda: server.db.read_sync(groups.by_name, "office").allow_receive_internet is True)
    cell.click()  # checked -> clear
    _wait_for(lambda: server.db.read_sync(groups.by_name, "office").allow_receive_internet is False)
    _shot(browser, tmp_path, "06-groups")

    browser.get(base + "/admin/localmail.html")
    browser.find_element(_by("ID"), "domain-name").send_keys("a.test;b.test")
    _click(
        browser, browser.find_element(_by("XPATH"), "//form[@action='/admin/domains/add']//button")
    )
    text = browser.find_element(_by("ID"), "domains-grid").text
    assert "a.test" in text
    assert "b.test" in text
    _shot(browser, tmp_path, "07-localmail")

    # Check 28 from the browser: without the implied mapping, kate@ is unrecognised.
    browser.find_element(_by("ID"), "implied_mapping").click()
    _click(browser, browser.find_element(_by("XPATH"), "//button[text()='Submit']"))
    assert "Local Mail settings saved." in _body(browser)

    def rcpt_codes() -> tuple[int, int]:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
            smtp.ehlo("client.test")
            smtp.mail("someone@remote.test")
            return smtp.rcpt("kate@example.test")[0], smtp.rcpt("sales@example.test")[0]

    # The router caches mappings for a couple of seconds: the new one may need a moment.
    assert _wait_for(lambda: rcpt_codes() == (550, 250))

    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.test")
    browser.get(base + "/admin/services.html")
    browser.find_element(_by("ID"), "chain").send_keys("not a certificate")
    browser.find_element(_by("ID"), "key").send_keys("nor a key")
    _click(browser, _button(browser, "Save certificate"))
    assert "must hold PEM text" in _body(browser)
    chain = b"".join(b.bytes() for b in cert.cert_chain_pems).decode()
    browser.execute_script(
        "document.getElementById('chain').value = arguments[0];"
        "document.getElementById('key').value = arguments[1];",
        chain,
        cert.private_key_pem.bytes().decode(),
    )
    _click(browser, _button(browser, "Save certificate"))
    assert "Restart vpop3d to use it" in _body(browser)
    _shot(browser, tmp_path, "08-services")

    browser.get(base + "/admin/queue.html")
    assert "Outgoing Message Queue" in browser.find_element(_by("TAG_NAME"), "h1").text
    _shot(browser, tmp_path, "09-queue")


def test_check_3_and_35_in_the_browser(server, browser, tmp_path):  # noqa: F811
    """A user lands in WebMail without Admin and is refused /admin; an admin cannot
    delete themselves, another admin can."""
    base = f"http://127.0.0.1:{server.ports['http']}"
    add_user(server, "fred", "fred-pw1")
    add_user(server, "boss", "boss-pw1", is_admin=True)
    add_user(server, "chief", "chief-pw1", is_admin=True)

    _login(browser, base, "fred", "fred-pw1")
    assert browser.current_url.endswith("/webmail/")
    assert not browser.find_elements(_by("ID"), "admin-link")
    _shot(browser, tmp_path, "10-webmail-user")
    browser.get(base + "/admin/users.html")
    assert "You are not an administrator." in _body(browser)
    browser.get(base + "/webmail/")
    _logout(browser)

    _login(browser, base, "boss", "boss-pw1")
    browser.get(base + "/webmail/")
    assert browser.find_elements(_by("ID"), "admin-link")
    browser.get(base + "/admin/users.html")
    browser.execute_script("window.confirm = () => true;")
    _click(browser, browser.find_element(_by("CSS_SELECTOR"), "button[aria-label='Delete boss']"))
    assert (
        "cannot delete the account you are logged in as"
        in browser.find_element(_by("TAG_NAME"), "body").text
    )
    assert server.db.read_sync(users.by_name, "boss") is not None
    _logout(browser)

    _login(browser, base, "chief", "chief-pw1")
    browser.get(base + "/admin/users.html")
    browser.execute_script("window.confirm = () => true;")
    _click(browser, browser.find_element(_by("CSS_SELECTOR"), "button[aria-label='Delete boss']"))
    assert "User boss has been deleted." in _body(browser)
    assert server.db.read_sync(users.by_name, "boss") is None
