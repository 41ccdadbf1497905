from __future__ import annotations

import asyncio
import signal

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.app import init_app
from shared.broker import Broker
from shared.mongo import PROJECT_UPDATES, SYSTEM_POSTS, Document
from shared.settings import Settings
from tests.support.change_streams import awaiting_get_more
from tests.support.notifier import logged, publish
from tests.support.processes import start_service
from tests.support.waiting import eventually
from tools.mongod import free_port


def loop_time() -> float:
    return asyncio.get_running_loop().time()


class TestServiceProcess:
    async def test_starts_serves_and_stops_cleanly_on_sigterm(
        self, settings: Settings, broker: Broker, db: AsyncDatabase[Document]
    ) -> None:
        """``python -m services.update_notifier`` logs ready, consumes, serves, and exits 0 on SIGTERM."""
        port = free_port()
        process = start_service("update_notifier", settings, NOTIFIER_HOST="127.0.0.1",
                                NOTIFIER_PORT=str(port))
        try:
            ready = await process.next_event("ready")
            assert ready["service"] == "update_notifier"
            await publish(broker, ["p1"])
            recorded = await process.next_event("project_update_recorded")
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
                    await process.next_event("stopped", timeout=10)
                    assert await asyncio.wait_for(process.wait(), 10) == 0
                    assert loop_time() - started < 5
        finally:
            if process.returncode is None:
                await process.kill()


class TestStop:
    async def test_stopping_never_waits_for_the_change_streams_idle_get_mores(
        self, settings: Settings, db: AsyncDatabase[Document]
    ) -> None:
        """Both followers (the log's, the dashboard journal's) parked in a getMore: the
        application's cleanup returns (bounded generously; shared/change_stream.py)."""
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(init_app(settings), host="127.0.0.1"))
        await client.start_server()
        try:
            for collection in (PROJECT_UPDATES, SYSTEM_POSTS):
                async def parked(collection: str = collection) -> bool:
                    return await awaiting_get_more(db, collection)

                await eventually(parked, what=f"a getMore on {collection}")
        finally:
            closing = asyncio.create_task(client.close())
            done, _ = await asyncio.wait({closing}, timeout=60)
        assert closing in done
