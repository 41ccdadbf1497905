"""Fixtures for the update notifier: applications on real ports against the test's servers."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.app import init_app
from services.update_notifier.fanout import DEFAULT_BOUND
from services.update_notifier.head import DEFAULT_HEAD_ENTRIES, HeadWindow
from services.update_notifier.keys import HEAD
from shared.broker import Broker
from shared.messages import ProjectUpdated
from shared.mongo import PROJECT_UPDATES, ContentType, Document
from shared.settings import Settings
from tests.waiting import eventually
from tools.mongod import free_port, start_mongod, stop_mongod

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True, slots=True)
class Notifier:
    """One running notifier application and an HTTP client for it."""

    app: web.Application
    client: Client

    async def poll(self, body: object = None, *, headers: dict[str, str] | None = None
                   ) -> dict[str, Any]:
        """``POST /api/getUpdates`` (no body when ``body`` is None); the JSON of a 200."""
        response = await self.client.post("/api/getUpdates", json=body, headers=headers)
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    @property
    def head(self) -> HeadWindow:
        """The application's in-memory head of the log (answers cursor polls near it)."""
        return self.app[HEAD]

    async def followed(self, seq: int, timeout: float = 10) -> None:
        """Wait until this notifier's tailer has followed the log up to ``seq``: its cursor
        polls answer from memory up to there (they may lag the log by the stream's delay)."""

        async def there() -> bool:
            return self.head.live and self.head.tail >= seq

        await eventually(there, timeout=timeout, what=f"the notifier following the log to {seq}")


class StartNotifier(Protocol):
    def __call__(self, *, broker: Broker | None = None, settings: Settings = ...,
                 keepalive_seconds: float = 15.0,
                 stream_queue_bound: int = DEFAULT_BOUND,
                 head_entries: int = DEFAULT_HEAD_ENTRIES) -> Awaitable[Notifier]: ...


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


def update(project_id: str, *content_types: ContentType) -> ProjectUpdated:
    return ProjectUpdated(project_id=project_id, reason="test",
                          content_types=content_types or (ContentType.SCHEDULED,))


async def publish(broker: Broker, project_ids: Sequence[str]) -> list[ProjectUpdated]:
    """Publish one ``ProjectUpdated`` per id, in order, through the real broker."""
    sent = [update(project_id) for project_id in project_ids]
    for message in sent:
        await broker.publish_update(message)
    return sent


async def logged(db: AsyncDatabase[Document], count: int, *followers: Notifier,
                 timeout: float = 10) -> None:
    """Wait until the update log holds ``count`` entries (seqs 1 to ``count``), and each of
    ``followers`` has followed them."""

    async def enough() -> bool:
        return await db[PROJECT_UPDATES].count_documents({}) >= count

    await eventually(enough, timeout=timeout, what=f"{count} entries in the update log")
    for follower in followers:
        await follower.followed(count, timeout=timeout)


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
