"""The refresher's lifespan: MongoDB, VK client, broker, and the consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.refresher.coalescing import RefreshCoordinator
from services.refresher.handler import Refresher, RefreshHandler
from services.refresher.reconcile import Reconciler
from services.refresher.spacing import RoundSpacing
from shared.broker import AckPolicy, Broker
from shared.health import dependencies_ready, health_server
from shared.leases import process_owner
from shared.messages import CallbackEvent
from shared.mongo import PROJECTS, REFRESH_STATE, connect, ensure_indexes
from shared.settings import Settings
from shared.tasks import cancel_and_wait
from shared.topology import Topology
from shared.vk import VkClient

SERVICE = "refresher"


@asynccontextmanager
async def lifespan(settings: Settings) -> AsyncIterator[None]:
    client = connect(settings, SERVICE)
    db = client[settings.mongo_db]
    await ensure_indexes(db, settings.updates_retention_seconds)
    broker = Broker(str(settings.amqp_url), Topology(settings.amqp_prefix), client_name=SERVICE)
    await broker.connect()
    async with VkClient.from_settings(settings) as vk:
        refresher = Refresher(client, db, vk, broker, settings.refresher_published_limit,
                              token_probe_seconds=settings.vk_token_probe_seconds)
        coordinator = RefreshCoordinator(
            db[REFRESH_STATE], refresher, owner=process_owner(),
            lease_seconds=settings.refresher_lease_seconds,
            spacing=RoundSpacing(settings.refresher_round_spacing_seconds,
                                 settings.refresher_round_spacing_per_event_seconds,
                                 settings.refresher_round_spacing_max_seconds))
        reconciler = Reconciler(db[PROJECTS], coordinator,
                                interval=settings.reconcile_interval_seconds,
                                tick=min(1.0, settings.reconcile_interval_seconds / 10))
        sweeper = asyncio.create_task(coordinator.sweep_forever())
        reconciling = asyncio.create_task(reconciler.run_forever())
        try:
            await broker.consume(broker.topology.refresher_queue, CallbackEvent,
                                 RefreshHandler(db, coordinator),
                                 AckPolicy(prefetch=settings.refresher_prefetch))
            async with health_server(settings.health_host, settings.health_port,
                                     dependencies_ready(lambda: broker, lambda: client),
                                     service=SERVICE):
                yield
        finally:
            await broker.close()
            await cancel_and_wait(sweeper, reconciling)
            await coordinator.close()
            await client.close()
