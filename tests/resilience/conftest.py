"""Resilience scenarios: the services as real processes against real servers, under faults.

Every scenario runs in a **short** version by default and has a **long** version
(``-m long``, or ``RESILIENCE_LONG=1`` to run both): same test, bigger numbers.
The output of every process the suite starts is kept in one directory (printed at
the end of the run), and :class:`~tests.resilience.test_security.TestNoSecretsInLogs`
runs last and scans all of it for the tokens and secrets the suite used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import pytest

from shared.settings import Settings
from shared.topology import Topology, delete_topology
from tests.resilience.harness import LogBook, ServiceGroup
from tests.support.scenarios import Figures, Mode
from tools.vk_sandbox import SandboxConfig

HERE = Path(__file__).resolve().parent
LONG_ENV = "RESILIENCE_LONG"
LOG_DIR_ENV = "RESILIENCE_LOG_DIR"
RUN_LAST = "TestNoSecretsInLogs"
BROKER_WAIT_SECONDS = 180.0
T = TypeVar("T")

_LOGBOOK: LogBook | None = None


def _long_selected(config: pytest.Config) -> bool:
    return os.environ.get(LONG_ENV) == "1" or "long" in str(config.getoption("markexpr") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long versions only when asked for; the log scan after every other scenario."""
    def runs_last(item: pytest.Item) -> bool:
        cls = getattr(item, "cls", None)
        return cls is not None and cls.__name__ == RUN_LAST

    mine = [item for item in items if HERE in item.path.parents]
    if not _long_selected(config):
        dropped = [item for item in mine
                   if item.get_closest_marker("long") is not None and not runs_last(item)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if item not in dropped]
    last = [item for item in items if runs_last(item) and HERE in item.path.parents]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(params=[pytest.param(False, id="short"),
                        pytest.param(True, id="long",
                                     marks=[pytest.mark.long, pytest.mark.timeout(900)])])
def mode(request: pytest.FixtureRequest) -> Mode:
    return Mode(long=bool(request.param))


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """VK's callback retry schedule scaled down only 100× (10 s → 0.1 s … 1 h → 36 s; about
    a minute in all after the gateway's first ``Retry-After: 5``), so that VK's patience
    outlasts the outages these scenarios cause, as the real schedule (1 h 43 min) would."""
    return SandboxConfig(retry_scale=0.01)


@pytest.fixture(scope="session")
def logbook(tmp_path_factory: pytest.TempPathFactory) -> LogBook:
    """Where every process writes: a new directory in ``RESILIENCE_LOG_DIR`` if set (kept),
    else a pytest temp dir."""
    global _LOGBOOK
    if explicit := os.environ.get(LOG_DIR_ENV):
        Path(explicit).mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"),
                                          dir=explicit))
    else:
        directory = tmp_path_factory.mktemp("resilience-logs")
    _LOGBOOK = LogBook(directory)
    return _LOGBOOK


@pytest.fixture(autouse=True)
async def broker_answers(amqp_url: str) -> None:
    """Wait (bounded) until RabbitMQ accepts a connection: the broker is shared, and a
    restart by another test run takes a while with many quorum queues."""
    deadline = time.monotonic() + BROKER_WAIT_SECONDS
    while True:
        try:
            connection = await aio_pika.connect(amqp_url, timeout=5)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
        else:
            await connection.close()
            return


@pytest.fixture
async def services(logbook: LogBook, settings: Settings) -> AsyncIterator[ServiceGroup]:
    """Start service processes; at the end they are stopped by PID and the test's queues
    and exchanges deleted."""
    group = ServiceGroup(logbook)
    try:
        yield group
    finally:
        await group.close()
        with contextlib.suppress(Exception):
            await delete_topology(str(settings.amqp_url), Topology(settings.amqp_prefix))


@pytest.fixture
def figures(logbook: LogBook, request: pytest.FixtureRequest) -> Figures:
    return Figures(logbook.directory / "figures.jsonl", request.node.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _LOGBOOK is None:
        return
    terminalreporter.section("resilience")
    terminalreporter.write_line(f"process logs: {_LOGBOOK.directory}")
    figures = _LOGBOOK.directory / "figures.jsonl"
    if figures.exists():
        for line in figures.read_text().splitlines():
            terminalreporter.write_line(line)
