"""Headless Debian Chromium driven by Selenium through /usr/bin/chromedriver, from async tests.

Selenium is blocking; every call runs in a worker thread so the services under test
(in the same event loop) keep running while the test waits on the browser.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ENSURE_CHROMIUM = ROOT / "scripts" / "ensure-chromium.sh"
NOT_ROOT_AND_MISSING = 3  # ensure-chromium.sh's exit code when it may not install
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage", "--window-size=1440,1000",
)


def ensure_chromium() -> str | None:
    """Install Debian's chromium + chromium-driver if missing; a skip reason if we may not."""
    result = subprocess.run([str(ENSURE_CHROMIUM)], capture_output=True, text=True, check=False)
    if result.returncode == NOT_ROOT_AND_MISSING:
        return ("Debian's chromium and chromium-driver are not installed and this is not root "
                "(scripts/ensure-chromium.sh cannot install them)")
    if result.returncode != 0:
        raise RuntimeError(f"scripts/ensure-chromium.sh failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    return None


def start_chromium(user_data_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


class Browser:
    """The few things the tests do with the page, awaitable."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body: use ``return``) in the page."""
        return await asyncio.to_thread(self.driver.execute_script, script, *args)

    async def click(self, css: str) -> None:
        def click() -> None:
            self.driver.find_element(By.CSS_SELECTOR, css).click()

        await asyncio.to_thread(click)

    async def block_urls(self, *patterns: str) -> None:
        """Make requests to matching URLs fail in the browser (DevTools ``Network.setBlockedURLs``)."""

        def block() -> None:
            self.driver.execute_cdp_cmd("Network.enable", {})
            self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(patterns)})

        await asyncio.to_thread(block)

    async def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.driver.save_screenshot, str(path))

    def console(self) -> list[dict[str, Any]]:
        get_log: Callable[[str], list[dict[str, Any]]] = self.driver.get_log  # untyped upstream
        return get_log("browser")
