"""``python -m services.post_tracker`` as a process: ready, publishes, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import Document
from shared.settings import Settings
from tests.support.communities import new_community
from tests.support.documents import insert_post
from tests.support.processes import start_service
from tests.support.sandbox import RunningSandbox
from tests.support.tracker import UpdatesInbox, wait_deleted


class TestServiceProcess:
    async def test_starts_publishes_and_stops_cleanly_on_sigterm(
            self, settings: Settings, db: AsyncDatabase[Document], broker: Broker,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """The service logs ready, publishes a due post, and exits 0 on SIGTERM."""
        process = start_service("post_tracker", settings, VK_API_URL=vk_sandbox.api_url,
                                TRACKER_INTERVAL_SECONDS="1")
        try:
            ready = await process.next_event("ready")
            assert ready["service"] == "post_tracker"
            community = await new_community(db, vk_sandbox)
            post_id = await insert_post(db, community.project_id, "From the service")
            line = await process.next_event("post_published")
            assert (line["post_id"], line["project_id"]) == (str(post_id), community.project_id)
            assert line["service"] == "post_tracker" and line["correlation_id"]
            await wait_deleted(db, post_id)
            await inbox.wait_for(community.project_id, 2)
            process.send_signal(signal.SIGTERM)
            await process.next_event("tracker_stopped", timeout=10)
            await process.next_event("stopped", timeout=10)
            assert await asyncio.wait_for(process.wait(), 10) == 0
        finally:
            if process.returncode is None:
                await process.kill()
