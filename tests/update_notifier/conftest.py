"""Fixtures for the update notifier: applications on real ports against the test's servers."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.app import init_app
from services.update_notifier.fanout import DEFAULT_BOUND
from services.update_notifier.head import DEFAULT_HEAD_ENTRIES
from shared.broker import Broker
from shared.mongo import Document
from shared.settings import Settings
from tests.support.notifier import Client, Notifier, StartNotifier
from tools.mongod import free_port, start_mongod, stop_mongod


@pytest.fixture
async def start_notifier(settings: Settings, db: AsyncDatabase[Document]
                         ) -> AsyncIterator[StartNotifier]:
    """Start notifier applications (``init_app``) on 127.0.0.1; all are stopped afterwards."""
    started: list[Client] = []

    async def start(*, broker: Broker | None = None, settings: Settings = settings,
                    keepalive_seconds: float = 15.0,
                    stream_queue_bound: int = DEFAULT_BOUND,
                    head_entries: int = DEFAULT_HEAD_ENTRIES) -> Notifier:
        app = init_app(settings, broker=broker, keepalive_seconds=keepalive_seconds,
                       stream_queue_bound=stream_queue_bound, head_entries=head_entries)
        client: Client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        started.append(client)
        return Notifier(app, client)

    yield start
    for client in reversed(started):
        await client.close()


@pytest.fixture
def restartable_mongod() -> Iterator[tuple[Path, int, list[subprocess.Popen[bytes]]]]:
    """A mongod of the test's own (data dir, port, its processes: the last is running), so
    the test can restart it under a change stream."""
    with tempfile.TemporaryDirectory(prefix="notifier-test-mongo-") as data_dir:
        port = free_port()
        processes = [start_mongod(Path(data_dir), port)]
        try:
            yield Path(data_dir), port, processes
        finally:
            stop_mongod(processes[-1])
