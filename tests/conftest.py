"""Fixtures for tests against real servers.

* **mongod**: one per test run, in a temporary data dir on a free port (or the
  server named by ``TEST_MONGO_URL``); each test gets its own database.
* **RabbitMQ**: the machine's broker (``TEST_AMQP_URL``, default the local one);
  each test gets its own name prefix, so tests, parallel runs and a running
  ``make run`` never see each other's queues.
* ``TEST_INFRA=testcontainers``: both in containers started with testcontainers instead
  (tests/containers/infra.py), one each per test run.

Tests that need RabbitMQ, mongod, a subprocess or the network are marked ``integration``
(``make test-unit`` runs the rest): here, by the fixtures they use and by directory; a test
elsewhere that starts a process carries the marker itself.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import Document, connect, ensure_indexes
from shared.settings import Settings
from shared.topology import Topology, delete_topology
from tests.containers.infra import (
    RABBITMQ_CONTAINER_ENV,
    Infrastructure,
    containerised_infrastructure,
    testcontainers_selected,
)
from tests.support.rabbit import answers
from tests.support.sandbox import RunningSandbox, running_sandbox
from tools.mongod import free_port, mongo_url, start_mongod, stop_mongod
from tools.vk_sandbox import SandboxConfig

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TESTS = Path(__file__).resolve().parent
# Every fixture that reaches RabbitMQ or a mongod depends on one of these.
INTEGRATION_FIXTURES = frozenset({"mongo_server_url", "amqp_url", "containers",
                                  "restartable_mongod"})
# Suites made of services as processes, containers, browsers or private brokers.
INTEGRATION_DIRECTORIES = frozenset({"api", "bench", "containers", "dashboard", "e2e", "health",
                                     "observability", "resilience"})


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not integration"`` the integration suites are not even imported."""
    if (config.getoption("markexpr") == "not integration" and collection_path.parent == TESTS
            and collection_path.name in INTEGRATION_DIRECTORIES):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` what needs servers or processes (see the module docstring)."""
    for item in items:
        suite = item.path.relative_to(TESTS).parts[0]
        if (INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or suite in INTEGRATION_DIRECTORIES):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def containers() -> Iterator[Infrastructure | None]:
    """RabbitMQ and MongoDB in containers when ``TEST_INFRA=testcontainers``, else None.

    rabbitmqctl (tests/support/rabbit.py) then acts on the broker's container.
    """
    if not testcontainers_selected():
        yield None
        return
    with containerised_infrastructure() as infrastructure, pytest.MonkeyPatch.context() as patch:
        patch.setenv(RABBITMQ_CONTAINER_ENV, infrastructure.rabbitmq_container_id)
        yield infrastructure


@pytest.fixture(scope="session")
def mongo_server_url(containers: Infrastructure | None) -> Iterator[str]:
    if containers is not None:
        yield containers.mongo_url
        return
    if explicit := os.environ.get("TEST_MONGO_URL"):
        yield explicit
        return
    with tempfile.TemporaryDirectory(prefix="planner-test-mongo-") as data_dir:
        port = free_port()
        process = start_mongod(Path(data_dir), port)
        try:
            yield mongo_url(port)
        finally:
            stop_mongod(process)


@pytest.fixture(scope="session")
def amqp_url(containers: Infrastructure | None) -> str:
    if containers is not None:
        return containers.amqp_url
    url = os.environ.get("TEST_AMQP_URL", DEFAULT_AMQP_URL)
    if not answers(url):
        subprocess.run(["scripts/ensure-rabbitmq.sh"], check=True,
                       cwd=Path(__file__).resolve().parents[1])
    return url


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def settings(mongo_server_url: str, amqp_url: str, unique_name: str
                   ) -> AsyncIterator[Settings]:
    """Settings for one test: its own database and broker prefix, fast timings.

    Whatever the test (or the service processes it started) declared under its prefix
    is deleted afterwards: leaked quorum queues would pile up in the shared broker
    (each holds files open; RabbitMQ stops accepting connections when it runs out).
    """
    overrides: dict[str, Any] = {
        "mongo_url": mongo_server_url,
        "mongo_db": unique_name,
        "amqp_url": amqp_url,
        "amqp_prefix": unique_name,
        "vk_timeout_seconds": 2.0,
        "log_format": "console",
    }
    yield Settings(**overrides)
    await delete_topology(amqp_url, Topology(unique_name))


@pytest.fixture
async def mongo_client(settings: Settings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = connect(settings, "tests")
    yield client
    await client.close()


@pytest.fixture
async def db(settings: Settings, mongo_client: AsyncMongoClient[Document]
             ) -> AsyncIterator[AsyncDatabase[Document]]:
    database = mongo_client[settings.mongo_db]
    await ensure_indexes(database, settings.updates_retention_seconds)
    yield database
    await mongo_client.drop_database(settings.mongo_db)


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    """A connected broker with the test's topology; its queues are deleted afterwards."""
    topology = Topology(settings.amqp_prefix)
    instance = Broker(str(settings.amqp_url), topology, client_name=f"test-{settings.amqp_prefix}")
    await instance.connect()
    yield instance
    await instance.close()


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """VK's callback retry schedule scaled down 1000× (10 s → 10 ms … 1 h → 3.6 s)."""
    return SandboxConfig(retry_scale=0.001)


@pytest.fixture
async def vk_sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[RunningSandbox]:
    """A fresh sandbox per test (tests/support/sandbox.py)."""
    async with running_sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def vk_settings(settings: Settings, vk_sandbox: RunningSandbox) -> Settings:
    """The test's settings with VK played by the sandbox."""
    return settings.model_copy(update={"vk_api_url": vk_sandbox.api_url})

