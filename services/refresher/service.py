"""The refresher's lifespan: MongoDB, VK client, broker, and the consumer."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.refresher.coalescing import RefreshCoordinator
from services.refresher.handler import Refresher, RefreshHandler
from shared.broker import AckPolicy, Broker
from shared.health import dependencies_ready, health_server
from shared.messages import CallbackEvent
from shared.mongo import REFRESH_STATE, connect, ensure_indexes
from shared.settings import Settings
from shared.topology import Topology
from shared.vk import VkClient


@asynccontextmanager
async def lifespan(settings: Settings) -> AsyncIterator[None]:
    client = connect(settings, "refresher")
    db = client[settings.mongo_db]
    await ensure_indexes(db, settings.updates_retention_seconds)
    broker = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix), client_name="refresher")
    await broker.connect()
    async with VkClient.from_settings(settings) as vk:
        coordinator = RefreshCoordinator(
            db[REFRESH_STATE], Refresher(client, db, vk, broker, settings.refresher_published_limit),
            owner=f"{socket.gethostname()}:{os.getpid()}",
            lease_seconds=settings.refresher_lease_seconds,
            min_round_interval=settings.refresher_min_round_interval_seconds)
        sweeper = asyncio.create_task(coordinator.sweep_forever())
        try:
            await broker.consume(broker.topology.refresher_queue, CallbackEvent,
                                 RefreshHandler(db, coordinator),
                                 AckPolicy(prefetch=settings.refresher_prefetch))
            async with health_server(settings.health_host, settings.health_port,
                                     dependencies_ready(lambda: broker, lambda: client),
                                     service="refresher"):
                yield
        finally:
            await broker.close()
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await coordinator.close()
            await client.close()
