"""promtool (installed like the project's other tools), and the metrics the services and
RabbitMQ really export: a private RabbitMQ node with its Prometheus plugin, the four
services as processes against it, and each one's ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import aiohttp
import pytest

from bench.infrastructure import PrivateRabbit
from shared.mongo import connect
from shared.topology import Topology, declare_topology, delete_topology
from tests.health.running import SERVICES, isolated_settings, running_service
from tests.observability.promql import ROOT, exposed_labels
from tests.waiting import eventually
from tools.mongod import free_port

ENSURE_PROMTOOL = ROOT / "scripts" / "ensure-promtool.sh"
NOT_ROOT_AND_MISSING = 3  # ensure-promtool.sh's exit code when it may not install
RABBITMQ = "rabbitmq"
# Queue metrics come from the statistics, collected every second here (default: 5 s).
STATISTICS_INTERVAL_MS = 1000


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


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """promtool in deploy/observability/ (rule files name each other relative to it)."""
    return subprocess.run([promtool, *args], cwd=ROOT / "deploy" / "observability",
                          capture_output=True, text=True, check=False, timeout=60)


@dataclass(frozen=True, slots=True)
class Exports:
    """The ``/metrics`` text of each service, and of RabbitMQ (key ``rabbitmq``), and the
    broker prefix whose queues RabbitMQ reports."""

    texts: dict[str, str]
    amqp_prefix: str


async def _scrape(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200, f"{url}: {response.status}"
        return await response.text()


@contextlib.asynccontextmanager
async def rabbit_with_plugin(topology: Topology) -> AsyncIterator[str]:
    """A RabbitMQ node of our own with rabbitmq_prometheus and per-queue series, as the
    Kubernetes RabbitmqCluster is configured (the machine's broker is shared: its plugins
    are not ours to change), holding the services' topology; yields its metrics URL."""
    metrics_port = free_port()
    node = PrivateRabbit(plugins=["rabbitmq_prometheus"], config=[
        "prometheus.return_per_object_metrics = true",
        "prometheus.tcp.ip = 127.0.0.1",
        f"prometheus.tcp.port = {metrics_port}",
        f"collect_statistics_interval = {STATISTICS_INTERVAL_MS}",
    ])
    try:
        await node.start()
        connection = await aio_pika.connect(node.url)
        async with connection:
            await declare_topology(await connection.channel(), topology)
        yield f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        await node.stop()


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
                text = await _scrape(http, rabbit.result())
                reported = {labels.get("queue") for labels in
                            exposed_labels(text, "rabbitmq_queue_messages_ready")}
                return text if queues <= reported else None

            texts = {RABBITMQ: await eventually(
                reports_the_queues, timeout=30, interval=0.5,
                what="RabbitMQ's /metrics reporting the services' queues")}
            for task in tasks:
                service = task.result()
                texts[service.name] = await _scrape(http, f"{service.base_url}/metrics")
        yield Exports(texts, settings.amqp_prefix)
    client = connect(settings, "tests")
    try:
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
    await delete_topology(amqp_url, topology)
