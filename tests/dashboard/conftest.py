"""Fixtures of the dashboard tests: a fresh headless Chromium per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.dashboard.browser import Browser, ensure_chromium, start_chromium


@pytest.fixture(scope="session")
def chromium_installed() -> None:
    """Installs Debian's chromium + chromium-driver when missing (as root); skips otherwise."""
    if (reason := ensure_chromium()) is not None:
        pytest.skip(reason)


@pytest.fixture
async def browser(chromium_installed: None, tmp_path: Path) -> AsyncIterator[Browser]:
    driver = await asyncio.to_thread(start_chromium, tmp_path / "chromium-profile")
    page = Browser(driver)
    try:
        yield page
    finally:
        # Shown by pytest only when the test failed: what the page said in its console.
        for entry in await asyncio.to_thread(page.console):
            print(f"browser console [{entry.get('level')}]: {entry.get('message')}")
        await asyncio.to_thread(driver.quit)
