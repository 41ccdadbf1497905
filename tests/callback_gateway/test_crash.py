"""kill -9 of the gateway while batches are in flight: no event it acknowledged is lost."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import Document
from shared.settings import Settings
from tests.callback_gateway.test_app import event, queued
from tests.support.documents import insert_project
from tests.support.processes import start_service
from tools.mongod import free_port

SENDERS = 16
KILL_AFTER_OKS = 300


class TestGatewayKilledMidBatch:
    async def test_every_acknowledged_event_is_in_the_queue(
            self, settings: Settings, db: AsyncDatabase[Document], broker: Broker) -> None:
        """Senders post without pause; after a few hundred 'ok' the gateway gets SIGKILL with
        requests (and so batches) in flight. Every event answered 'ok' is stored; the
        requests cut off got no 'ok' (VK would retry them)."""
        await insert_project(db, group_id=41)
        port = free_port()
        process = start_service("callback_gateway", settings, GATEWAY_HOST="127.0.0.1",
                                GATEWAY_PORT=str(port))
        await process.next_event("ready", timeout=60)
        acknowledged: list[str] = []
        cut_off: list[str] = []
        enough = asyncio.Event()

        async def sender(session: aiohttp.ClientSession, index: int) -> None:
            for n in range(100_000):
                event_id = f"s{index}-{n}"
                try:
                    async with session.post(f"http://127.0.0.1:{port}/api/callback",
                                            json=event(41, event_id=event_id)) as response:
                        answer = (response.status, await response.text())
                except aiohttp.ClientError:
                    cut_off.append(event_id)
                    return
                assert answer == (200, "ok")
                acknowledged.append(event_id)
                if len(acknowledged) >= KILL_AFTER_OKS:
                    enough.set()

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            senders = [asyncio.create_task(sender(session, index)) for index in range(SENDERS)]
            await asyncio.wait_for(enough.wait(), 60)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await asyncio.wait_for(asyncio.gather(*senders), 30)

        stored = {stored.event_id for stored in await queued(broker)}
        assert set(acknowledged) <= stored
        assert cut_off  # the kill did hit requests in flight
