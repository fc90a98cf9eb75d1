"""Headless Chromium (Debian's package) driven by Selenium, for the browser tests.

Never downloads a browser: uses /usr/bin/chromium and /usr/bin/chromedriver, and the
tests skip with the reason when they are missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return "needs Debian's chromium package (/usr/bin/chromium)"
    if not CHROMEDRIVER.exists():
        return "needs Debian's chromium-driver package (chromedriver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs the selenium Python package"
    return None


def launch(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    driver = launch(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()
