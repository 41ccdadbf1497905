"""The post tracker's lifespan: MongoDB, RabbitMQ, the VK client, and the tracker loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.post_tracker.options import TrackerOptions
from services.post_tracker.tracker import Tracker
from shared.broker import Broker
from shared.health import dependencies_ready, health_server
from shared.mongo import connect, ensure_indexes
from shared.settings import Settings
from shared.topology import Topology
from shared.vk import VkClient

SERVICE = "post_tracker"


@asynccontextmanager
async def lifespan(settings: Settings) -> AsyncIterator[None]:
    client = connect(settings, SERVICE)
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db, settings.updates_retention_seconds)
        broker = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix),
                        client_name=SERVICE)
        await broker.connect()
        try:
            async with VkClient.from_settings(settings) as vk:
                tracker = Tracker(db, vk, broker, TrackerOptions.from_settings(settings))
                tracker.start()
                try:
                    async with health_server(settings.health_host, settings.health_port,
                                             dependencies_ready(lambda: broker, lambda: client),
                                             service=SERVICE):
                        yield
                finally:
                    # Finishes the post in hand (or leaves it publishing), then returns.
                    await tracker.stop()
        finally:
            await broker.close()
    finally:
        await client.close()
