"""Post tracker tests: real mongod, real RabbitMQ, the VK sandbox in-process as VK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.broker import AckPolicy, Broker
from shared.messages import ProjectUpdated
from shared.settings import Settings
from tests.support.tracker import UpdatesInbox


@pytest.fixture
async def inbox(broker: Broker) -> AsyncIterator[UpdatesInbox]:
    collected = UpdatesInbox()
    consumer = await broker.consume(broker.topology.notifier_queue, ProjectUpdated, collected,
                                    AckPolicy(prefetch=256, shutdown_grace_seconds=1))
    yield collected
    await consumer.stop()


@pytest.fixture
def tracker_settings(vk_settings: Settings) -> Settings:
    """VK is the sandbox; the client does not retry on its own, so the tracker's rules show."""
    return vk_settings.model_copy(update={"vk_max_attempts": 1, "vk_timeout_seconds": 2.0})
