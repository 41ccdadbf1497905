"""The dashboard page in a real (headless) Chromium against the whole stack, in-process.

Gateway, refresher, notifier (in sandbox mode) and post tracker run in this process
against the test's mongod, RabbitMQ and VK sandbox; the page is driven only through
its own buttons, and every assertion reads what the page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import HttpUrl
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker.service import lifespan as tracker_lifespan
from shared.mongo import Document
from shared.settings import Settings
from tests.dashboard.browser import ROOT, Browser
from tests.e2e.stack import callback_path, connected_community, notifier_url, stack_settings
from tests.support.communities import Community
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually

SCREENSHOT = ROOT / ".artifacts" / "dashboard.png"


@contextlib.asynccontextmanager
async def whole_stack(settings: Settings) -> AsyncIterator[None]:
    """Gateway, refresher, notifier and post tracker, all in this process."""
    async with callback_path(settings, notifiers=1), tracker_lifespan(settings):
        yield


def project_js(project_id: str) -> str:
    """JS: the project's element (``p``) or null."""
    return f"const p = document.querySelector('[data-project-id=\"{project_id}\"].project');"


class Page:
    """What the test reads off the dashboard."""

    def __init__(self, browser: Browser, community: Community) -> None:
        self.browser = browser
        self.project_id = community.project_id
        self.find = project_js(self.project_id)

    async def connection(self) -> str:
        state: str = await self.browser.js(
            "return document.getElementById('connection').dataset.state;")
        return state

    async def listed(self) -> bool:
        return bool(await self.browser.js(self.find + "return p !== null;"))

    async def count(self, content: str) -> str:
        text: str = await self.browser.js(
            self.find + f"return p.querySelector('[data-count=\"{content}\"]').textContent;")
        return text

    async def dot(self) -> dict[str, Any] | None:
        """The visible "has updates" dot: its accessible name and role; None when hidden."""
        dot: dict[str, Any] | None = await self.browser.js(
            self.find + "const d = p.querySelector('.dot');"
            "return d.hidden || d.offsetWidth === 0 ? null :"
            " {label: d.getAttribute('aria-label'), role: d.getAttribute('role')};")
        return dot

    async def system_posts(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = await self.browser.js(
            self.find + "return [...p.querySelectorAll('tr[data-post-id]')].map(r => "
            "({id: r.dataset.postId, status: r.dataset.status, text: r.textContent}));")
        return rows

    async def timeline(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self.browser.js(
            "return [...document.querySelectorAll('#timeline > li')].map(e => ({"
            " seq: Number(e.dataset.seq), reason: e.dataset.reason, step: e.dataset.step,"
            " project: e.dataset.projectId, post: e.dataset.postId || null,"
            " latency: e.dataset.latencyMs === undefined ? null : Number(e.dataset.latencyMs),"
            " path: [...e.querySelectorAll('.path > li')].map(s => s.dataset.step)}));")
        return entries

    async def not_reloaded(self) -> bool:
        return bool(await self.browser.js("return window.__sameDocument === true;"))


class TestDashboardPage:
    async def test_scheduled_post_and_system_post_show_up_live(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        browser: Browser,
    ) -> None:
        """Page buttons → sandbox/system_posts → services → SSE → the page, without a reload."""
        settings = stack_settings(vk_settings).model_copy(update={
            "tracker_interval_seconds": 1.0, "tracker_verify_timeout_seconds": 30.0,
            "dashboard_sandbox_url": HttpUrl(vk_sandbox.base_url)})
        async with whole_stack(settings):
            community = await connected_community(db, vk_sandbox, settings)
            await browser.open(notifier_url(settings, "/"))
            page = Page(browser, community)

            async def live() -> bool:
                return await page.connection() == "live" and await page.listed()

            await eventually(live, what="the page connected to the stream, project listed")
            await browser.js("window.__sameDocument = true;")  # gone if the page reloads
            assert await page.dot() is None
            assert await page.count("scheduled") == "0"

            # 1. A scheduled post, made in the sandbox through the page's button: VK calls the
            #    gateway back, the refresher reloads the schedule, the notifier pushes it.
            await browser.click(f'[data-project-id="{community.project_id}"] '
                                '[data-action="scheduled-post"]')

            async def scheduled_shown() -> bool:
                return await page.count("scheduled") == "1" and await page.dot() is not None

            await eventually(scheduled_shown, timeout=15, what="scheduled count 1 and the dot")
            assert await page.dot() == {"label": "has updates", "role": "img"}
            refreshes = [e for e in await page.timeline() if e["step"] == "refresh done"]
            assert refreshes, await page.timeline()
            assert refreshes[0]["path"] == ["callback taken", "refresh done", "recorded", "shown"]
            assert refreshes[0]["latency"] is not None

            # Opening the project clears the dot, as in the planner.
            await browser.click(f'[data-project-id="{community.project_id}"] .project-open')
            assert await eventually(lambda: _is_none(page.dot()), what="the dot cleared")

            # 2. A system post due in 10 s, through the page's other button.
            await browser.click(f'[data-project-id="{community.project_id}"] '
                                '[data-action="system-post"]')

            async def pending() -> list[dict[str, str]]:
                return [row for row in await page.system_posts()
                        if row["status"] == "pending_publication"]

            [post] = await eventually(pending, what="the system post listed as pending")
            post_id = post["id"]

            async def steps_of_post() -> set[str]:
                return {e["step"] for e in await page.timeline() if e["post"] == post_id}

            async def verified() -> bool:
                gone = all(row["id"] != post_id for row in await page.system_posts())
                return gone and "verified" in await steps_of_post()

            await eventually(verified, timeout=25, interval=0.2,
                             what="the post published, verified and gone from system posts")
            entries = [e for e in await page.timeline() if e["post"] == post_id]
            # Normally "published" is also an entry of its own; but an announcement may be
            # given up (broker down), while the steps come from system_posts themselves.
            assert {e["step"] for e in entries} <= {"published", "verified"}, entries
            [verified_entry] = [e for e in entries if e["step"] == "verified"]
            assert verified_entry["path"] == ["created", "due", "claimed", "published", "verified",
                                              "announced", "recorded", "shown"], verified_entry
            assert verified_entry["latency"] is not None
            # The post VK got is on the wall, and the refresher picked it up too.
            assert await eventually(lambda: _equals(page.count("published"), "1"),
                                    what="published count 1")
            assert await page.not_reloaded()

            # For the picture: one more system post, waiting to fall due.
            await browser.click(f'[data-project-id="{community.project_id}"] '
                                '[data-action="system-post"]')
            await eventually(pending, what="a second system post listed as pending")
            await browser.screenshot(SCREENSHOT)
            assert (await asyncio.to_thread(SCREENSHOT.stat)).st_size > 10_000


    async def test_without_the_stream_the_page_polls_get_updates(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        browser: Browser,
    ) -> None:
        """The stream blocked in the browser: "polling", and updates still arrive (getUpdates)."""
        settings = stack_settings(vk_settings)
        async with callback_path(settings, notifiers=1):
            community = await connected_community(db, vk_sandbox, settings)
            await browser.block_urls("*/api/updates/stream*")
            await browser.open(notifier_url(settings, "/"))
            page = Page(browser, community)

            async def polling() -> bool:
                return await page.connection() == "polling" and await page.listed()

            await eventually(polling, what="the page fell back to polling")
            label: str = await browser.js(
                "return document.getElementById('connection').getAttribute('aria-live');")
            assert label == "polite"
            await vk_sandbox.control.create_post(community.group_id, "Later",
                                                 publish_date=int(time.time()) + 3600)

            async def scheduled_shown() -> bool:
                return await page.count("scheduled") == "1" and await page.dot() is not None

            await eventually(scheduled_shown, timeout=15, what="scheduled count 1 and the dot")
            assert await page.connection() == "polling"
            refreshes = [e for e in await page.timeline() if e["step"] == "refresh done"]
            assert refreshes and refreshes[0]["latency"] is not None


async def _is_none(value: Any) -> bool:
    return (await value) is None


async def _equals(value: Any, expected: object) -> bool:
    return bool((await value) == expected)
