"""promtool, and the ``/metrics`` the services and a RabbitMQ node of our own export."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import aiohttp

from bench.infrastructure import PrivateRabbit
from shared.topology import Topology, declare_topology
from tests.observability.promql import ROOT
from tools.mongod import free_port

RABBITMQ = "rabbitmq"
# Queue metrics come from the statistics, collected every second here (default: 5 s).
STATISTICS_INTERVAL_MS = 1000


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


async def scrape(http: aiohttp.ClientSession, url: str) -> str:
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
