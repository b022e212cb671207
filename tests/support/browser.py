"""Headless Chromium for dashboard tests: Debian's ``chromium`` and ``chromium-driver`` driven by Selenium.

``scripts/bootstrap --test`` installs both. The driver is given by path, so Selenium never looks for (or
downloads) one of its own; the browser runs with networking features that call out switched off.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)


def available() -> str | None:
    """``None`` when the browser and its driver are installed, else what is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists() and not shutil.which(path)]
    return f"not installed: {', '.join(missing)} (scripts/bootstrap --test installs them)" if missing else None


def chromium(profile: Path) -> webdriver.Chrome:
    """A headless Chromium with its profile in ``profile``."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def wait_until(driver: webdriver.Chrome, check: Any, timeout: float) -> Any:
    """``check(driver)``'s first truthy value, polled every 0.05 s for at most ``timeout`` s. An element missing, or
    re-rendered between finding it and reading it (the dashboard replaces fragments), is looked up again."""
    return WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.05,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(check)
