"""The four services as processes, started once for the module (starting one takes seconds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from shared.mongo import connect
from shared.settings import Settings
from shared.topology import Topology, delete_topology
from tests.health.running import (
    SEEDED,
    SERVICES,
    RunningService,
    isolated_settings,
    running_service,
)
from tests.support.documents import insert_project
from tools.mongod import free_port
from tools.vk_sandbox import SandboxConfig
from tools.vk_sandbox import init_app as init_sandbox

TEARDOWN_TIMEOUT_SECONDS = 30.0


@pytest.fixture(scope="module")
async def sandbox_api_url() -> AsyncIterator[str]:
    """The VK sandbox on a real port, for the services that call VK."""
    runner = web.AppRunner(init_sandbox(SandboxConfig()), access_log=None, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/method"
    await runner.cleanup()


@pytest.fixture(scope="module")
async def stack_settings(mongo_server_url: str, amqp_url: str, sandbox_api_url: str
                         ) -> AsyncIterator[Settings]:
    """The module's own database and broker prefix, with one project; both removed after."""
    settings = isolated_settings(mongo_server_url, amqp_url, vk_api_url=sandbox_api_url)
    client = connect(settings, "tests")
    try:
        await insert_project(client[settings.mongo_db], group_id=SEEDED.group_id,
                             secret=SEEDED.secret)
        yield settings
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
    async with asyncio.timeout(TEARDOWN_TIMEOUT_SECONDS):  # never hang on a broker mid-restart
        await delete_topology(str(settings.amqp_url), Topology(settings.amqp_prefix))


@pytest.fixture(scope="module")
async def services(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[dict[str, RunningService]]:
    """All four services, each as ``python -m services.<name>``, started together."""
    log_dir = tmp_path_factory.mktemp("health-logs")
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(stack.enter_async_context(
                running_service(name, stack_settings, log_dir))) for name in SERVICES]
        yield {task.result().name: task.result() for task in tasks}
