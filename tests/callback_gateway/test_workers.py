"""``GATEWAY_WORKERS=2``: two gateway processes on one port, as ``python -m services.callback_gateway``."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import Document
from shared.settings import Settings
from tests.callback_gateway.test_app import event, queued
from tests.support.documents import insert_project
from tests.support.processes import start_service
from tests.support.rabbit import rabbitmqctl
from tests.support.waiting import eventually
from tools.mongod import free_port
from tools.processes import ChildProcess


@pytest.fixture
async def workers(settings: Settings) -> AsyncIterator[tuple[ChildProcess, str]]:
    port = free_port()
    process = start_service("callback_gateway", settings, GATEWAY_WORKERS="2",
                            GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port))
    yield process, f"http://127.0.0.1:{port}"
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def gateway_connections(prefix_pids: list[int]) -> set[int]:
    """PIDs of the worker processes with a broker connection open (connection names)."""
    listing = await rabbitmqctl("list_connections", "--no-table-headers", "client_properties")
    return {pid for pid in prefix_pids if f"callback_gateway-{pid}" in listing}


class TestWorkers:
    async def test_two_workers_share_the_port_and_report_metrics_together(
            self, workers: tuple[ChildProcess, str], db: AsyncDatabase[Document],
            broker: Broker) -> None:
        """Both workers start (each with its own broker connection), callbacks are accepted
        on the one port, and /metrics of either counts the callbacks of both."""
        process, url = workers
        started = await process.next_event("workers_started", timeout=60)
        pids = started["pids"]
        assert len(pids) == 2
        for _ in pids:
            await process.next_event("ready", timeout=90)
        assert await eventually(lambda: gateway_connections(pids), what="broker connections")
        assert await gateway_connections(pids) == set(pids)

        await insert_project(db, group_id=31)
        async with aiohttp.ClientSession() as session:
            async def post(n: int) -> int:
                # A new connection each time, so the kernel spreads them over the workers.
                async with session.post(f"{url}/api/callback", json=event(31, event_id=f"w{n}"),
                                        headers={"Connection": "close"}) as response:
                    return response.status
            assert await asyncio.gather(*(post(n) for n in range(40))) == [200] * 40
            for _ in range(3):  # whichever worker answers: the sum over both
                async with session.get(f"{url}/metrics") as response:
                    text = await response.text()
                assert ('gateway_callbacks_total{outcome="accepted",type="wall_post_new"} 40.0'
                        in text)
        assert len(await queued(broker)) == 40

    async def test_a_dead_worker_stops_the_set_with_a_failure(
            self, workers: tuple[ChildProcess, str]) -> None:
        """kill -9 of one worker: the supervisor stops the other and exits 1 (restart it all)."""
        process, _ = workers
        pids = (await process.next_event("workers_started", timeout=60))["pids"]
        for _ in pids:
            await process.next_event("ready", timeout=90)
        os.kill(pids[0], signal.SIGKILL)
        assert await asyncio.wait_for(process.wait(), 40) == 1
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
