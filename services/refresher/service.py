"""The refresher's lifespan: MongoDB, VK client, broker, and the consumer."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.refresher.coalescing import RefreshCoordinator
from services.refresher.handler import RefreshHandler
from shared.broker import AckPolicy, Broker
from shared.health import dependencies_ready, health_server
from shared.messages import CallbackEvent
from shared.mongo import REFRESH_STATE, connect, ensure_indexes
from shared.settings import Settings
from shared.topology import Topology
from shared.vk import VkClient


@asynccontextmanager
async def lifespan(settings: Settings) -> AsyncIterator[None]:
    client = connect(settings)
    db = client[settings.mongo_db]
    await ensure_indexes(db, settings.updates_retention_seconds)
    broker = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix), client_name="refresher")
    await broker.connect()
    owner = f"{socket.gethostname()}:{os.getpid()}"
    coordinator = RefreshCoordinator(db[REFRESH_STATE], owner, settings.refresher_lease_seconds)
    async with VkClient.from_settings(settings) as vk:
        handler = RefreshHandler(client, db, vk, broker, coordinator,
                                 settings.refresher_published_limit)
        try:
            await broker.consume(broker.topology.refresher_queue, CallbackEvent, handler,
                                 AckPolicy(prefetch=settings.refresher_prefetch))
            async with health_server(settings.health_host, settings.health_port,
                                     dependencies_ready(lambda: broker, lambda: client)):
                yield
        finally:
            await broker.close()
            await client.close()
