from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import Document
from shared.settings import Settings
from tests.update_notifier.conftest import logged, publish
from tools.mongod import free_port

ROOT = Path(__file__).resolve().parents[2]


def loop_time() -> float:
    return asyncio.get_running_loop().time()


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
    async def test_starts_serves_and_stops_cleanly_on_sigterm(
        self, settings: Settings, broker: Broker, db: AsyncDatabase[Document]
    ) -> None:
        """``python -m services.update_notifier`` logs ready, consumes, serves, and exits 0 on SIGTERM."""
        port = free_port()
        env = {**os.environ, "MONGO_URL": str(settings.mongo_url), "MONGO_DB": settings.mongo_db,
               "AMQP_URL": str(settings.amqp_url), "AMQP_PREFIX": settings.amqp_prefix,
               "NOTIFIER_HOST": "127.0.0.1", "NOTIFIER_PORT": str(port), "LOG_FORMAT": "json"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.update_notifier", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert process.stdout is not None
        try:
            ready = await next_log_line(process.stdout, "ready")
            assert ready["service"] == "update_notifier"
            await publish(broker, ["p1"])
            recorded = await next_log_line(process.stdout, "project_update_recorded")
            assert (recorded["project_id"], recorded["seq"]) == ("p1", 1)
            assert recorded["correlation_id"]
            await logged(db, 1)
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                async with http.get("/readyz") as response:
                    assert response.status == 200
                async with http.post("/api/getUpdates") as response:
                    assert await response.json() == {"updatedProjectIds": ["p1"]}
                # An open stream does not hold up the stop.
                async with http.get("/api/updates/stream") as stream:
                    assert (await stream.content.readline()).startswith(b"retry:")
                    started = loop_time()
                    process.send_signal(signal.SIGTERM)
                    await next_log_line(process.stdout, "stopped", timeout=10)
                    assert await asyncio.wait_for(process.wait(), 10) == 0
                    assert loop_time() - started < 5
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
