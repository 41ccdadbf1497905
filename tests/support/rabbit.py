"""Helpers that act on the real RabbitMQ server: whether it answers, and rabbitmqctl
(a test's topology is deleted by ``shared.topology.delete_topology``).

rabbitmqctl runs on this machine (the machine's broker), or, when ``TEST_RABBITMQ_CONTAINER``
names the broker's container (``TEST_INFRA=testcontainers`` sets it), inside that container.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import docker

from tests.containers.infra import RABBITMQ_CONTAINER_ENV, testcontainers_selected


def answers(url: str) -> bool:
    """Whether the broker of ``url`` accepts a TCP connection (within a second)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 1):
            return True
    except OSError:
        return False


def _in_container(container_id: str, args: tuple[str, ...]) -> str:
    client = docker.from_env()
    try:
        result = client.containers.get(container_id).exec_run(["rabbitmqctl", "-q", *args],
                                                               demux=True)
    finally:
        client.close()
    out, err = result.output
    if result.exit_code != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed in {container_id[:12]}: "
                           f"{(err or out or b'').decode().strip()}")
    return (out or b"").decode()


async def rabbitmqctl(*args: str) -> str:
    if container_id := os.environ.get(RABBITMQ_CONTAINER_ENV):
        return await asyncio.to_thread(_in_container, container_id, args)
    if testcontainers_selected():  # never act on the machine's broker by mistake
        raise RuntimeError("TEST_INFRA=testcontainers, but the broker's container has not been "
                           "started: the test must use the amqp_url fixture")
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode()


async def close_connections(name_prefix: str) -> int:
    """Close, from the server side, every connection whose connection_name starts so."""
    listing = await rabbitmqctl("list_connections", "--no-table-headers", "pid",
                                "client_properties")
    closed = 0
    for line in listing.splitlines():
        pid, _, properties = line.partition("\t")
        # The table formatter renders client properties as {"connection_name","name"}.
        if f'{{"connection_name","{name_prefix}' in properties:
            await rabbitmqctl("close_connection", pid, "test: simulated drop")
            closed += 1
    return closed


@asynccontextmanager
async def broker_stopped() -> AsyncIterator[None]:
    """Stop the RabbitMQ application for the block; it is always started again."""
    await rabbitmqctl("stop_app")
    try:
        yield
    finally:
        await rabbitmqctl("start_app")
        await rabbitmqctl("await_startup")


@asynccontextmanager
async def queue_policy(queue_name: str, definition: str) -> AsyncIterator[None]:
    """A policy on exactly one queue (of the test's own prefix) for the block."""
    name = f"test-{queue_name}"
    await rabbitmqctl("set_policy", "--apply-to", "queues", "--priority", "100", name,
                      f"^{re.escape(queue_name)}$", definition)
    try:
        yield
    finally:
        await rabbitmqctl("clear_policy", name)
