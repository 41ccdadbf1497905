"""Ops CLI tests: the command run in-process against real mongod, RabbitMQ and the VK sandbox
(tests/support/ops.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.settings import Settings
from shared.topology import Topology, delete_topology
from tests.support.ops import Ops


@pytest.fixture
def ops(vk_settings: Settings) -> Ops:
    return Ops(vk_settings)


@pytest.fixture(autouse=True)
async def clean_servers(settings: Settings, db: AsyncDatabase[Document]) -> AsyncIterator[None]:
    """The test's database is dropped (by ``db``) and its broker topology, which the CLI
    declares when it touches RabbitMQ, deleted afterwards."""
    yield
    await delete_topology(str(settings.amqp_url), Topology(settings.amqp_prefix))
