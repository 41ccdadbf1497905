"""promtool (installed like the project's other tools), and the metrics the services and
RabbitMQ really export: a private RabbitMQ node with its Prometheus plugin, the four
services as processes against it, and each one's ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import pytest

from shared.mongo import connect
from shared.topology import Topology, delete_topology
from tests.health.running import SERVICES, isolated_settings, running_service
from tests.observability.promql import ROOT, exposed_labels
from tests.support.observability import RABBITMQ, Exports, rabbit_with_plugin, scrape
from tests.support.waiting import eventually

ENSURE_PROMTOOL = ROOT / "scripts" / "ensure-promtool.sh"
NOT_ROOT_AND_MISSING = 3  # ensure-promtool.sh's exit code when it may not install


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; installs Debian's ``prometheus`` package if missing (as root)."""
    result = subprocess.run([str(ENSURE_PROMTOOL)], capture_output=True, text=True, check=False)
    if result.returncode == NOT_ROOT_AND_MISSING:
        pytest.skip("promtool is not installed and this is not root "
                    "(scripts/ensure-promtool.sh cannot install Debian's prometheus package)")
    if result.returncode != 0:
        raise RuntimeError(f"scripts/ensure-promtool.sh failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    path = shutil.which("promtool")
    assert path is not None, "ensure-promtool.sh succeeded but promtool is not on PATH"
    return path


@pytest.fixture(scope="module")
async def exports(mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Exports]:
    """The four services as processes (on the machine's broker) and, started meanwhile, a
    RabbitMQ node with the Prometheus plugin and the same queues; every ``/metrics`` is
    read once RabbitMQ reports the queues."""
    settings = isolated_settings(mongo_server_url, amqp_url, vk_api_url="http://127.0.0.1:9/method")
    topology = Topology(settings.amqp_prefix)
    log_dir = tmp_path_factory.mktemp("observability-logs")
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.TaskGroup() as group:
            rabbit = group.create_task(stack.enter_async_context(rabbit_with_plugin(topology)))
            tasks = [group.create_task(stack.enter_async_context(
                running_service(name, settings, log_dir))) for name in SERVICES]
        queues = {queue.name for queue in topology.consuming_queues}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def reports_the_queues() -> str | None:
                text = await scrape(http, rabbit.result())
                reported = {labels.get("queue") for labels in
                            exposed_labels(text, "rabbitmq_queue_messages_ready")}
                return text if queues <= reported else None

            texts = {RABBITMQ: await eventually(
                reports_the_queues, timeout=30, interval=0.5,
                what="RabbitMQ's /metrics reporting the services' queues")}
            for task in tasks:
                service = task.result()
                texts[service.name] = await scrape(http, f"{service.base_url}/metrics")
        yield Exports(texts, settings.amqp_prefix)
    client = connect(settings, "tests")
    try:
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
    await delete_topology(amqp_url, topology)
