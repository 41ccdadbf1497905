"""The services under contract test, as processes started once per test module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.broker import Broker
from shared.mongo import connect
from shared.settings import Settings
from shared.topology import Topology
from tests.health.running import isolated_settings
from tests.support.rabbit import delete_topology

TEARDOWN_TIMEOUT_SECONDS = 30.0


@pytest.fixture(scope="module")
async def api_settings(mongo_server_url: str, amqp_url: str) -> AsyncIterator[Settings]:
    """The module's own database and broker prefix; both are removed afterwards."""
    settings = isolated_settings(mongo_server_url, amqp_url)
    yield settings
    client = connect(settings, "tests")
    try:
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
    async with asyncio.timeout(TEARDOWN_TIMEOUT_SECONDS):  # never hang on a broker mid-restart
        await delete_topology(str(settings.amqp_url), Topology(settings.amqp_prefix))


@pytest.fixture(scope="module")
async def api_broker(api_settings: Settings) -> AsyncIterator[Broker]:
    """A connection to the module's topology, to feed and inspect the services' queues."""
    broker = Broker(str(api_settings.amqp_url), Topology(api_settings.amqp_prefix),
                    client_name=f"test-{api_settings.amqp_prefix}")
    await broker.connect()
    yield broker
    await broker.close()
