"""``python -m services.post_tracker`` as a process: ready, publishes, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import RunningSandbox
from tests.post_tracker.conftest import UpdatesInbox, insert_post, new_community, wait_deleted

ROOT = Path(__file__).resolve().parents[2]


async def next_log_line(stdout: asyncio.StreamReader, event: str, timeout: float = 20
                        ) -> dict[str, Any]:
    """Read JSON log lines until one has this ``event``; fail on EOF or after ``timeout``."""
    async with asyncio.timeout(timeout):
        while raw := await stdout.readline():
            try:
                line: dict[str, Any] = json.loads(raw)
            except ValueError:
                continue  # a stdlib log line of a library
            if line.get("event") == event:
                return line
    raise AssertionError(f"the service exited before logging {event!r}")


class TestServiceProcess:
    async def test_starts_publishes_and_stops_cleanly_on_sigterm(
            self, settings: Settings, db: AsyncDatabase[Document], broker: Broker,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """The service logs ready, publishes a due post, and exits 0 on SIGTERM."""
        env = {**os.environ, "MONGO_URL": str(settings.mongo_url), "MONGO_DB": settings.mongo_db,
               "AMQP_URL": str(settings.amqp_url), "AMQP_PREFIX": settings.amqp_prefix,
               "VK_API_URL": vk_sandbox.api_url, "TRACKER_INTERVAL_SECONDS": "1",
               "LOG_FORMAT": "json"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.post_tracker", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert process.stdout is not None
        try:
            ready = await next_log_line(process.stdout, "ready")
            assert ready["service"] == "post_tracker"
            community = await new_community(db, vk_sandbox)
            post_id = await insert_post(db, community.project_id, "From the service")
            line = await next_log_line(process.stdout, "post_published")
            assert (line["post_id"], line["project_id"]) == (str(post_id), community.project_id)
            assert line["service"] == "post_tracker" and line["correlation_id"]
            await wait_deleted(db, post_id)
            await inbox.wait_for(community.project_id, 2)
            process.send_signal(signal.SIGTERM)
            await next_log_line(process.stdout, "tracker_stopped", timeout=10)
            await next_log_line(process.stdout, "stopped", timeout=10)
            assert await asyncio.wait_for(process.wait(), 10) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
