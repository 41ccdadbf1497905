"""Fixtures for the update notifier: applications on real ports against the test's servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.app import init_app
from services.update_notifier.fanout import DEFAULT_BOUND
from shared.broker import Broker
from shared.messages import ProjectUpdated
from shared.mongo import PROJECT_UPDATES, ContentType, Document
from shared.settings import Settings
from tests.waiting import eventually

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


class StartNotifier(Protocol):
    def __call__(self, *, broker: Broker | None = None, settings: Settings = ...,
                 keepalive_seconds: float = 15.0,
                 stream_queue_bound: int = DEFAULT_BOUND) -> Awaitable[Notifier]: ...


@pytest.fixture
async def start_notifier(settings: Settings, db: AsyncDatabase[Document]
                         ) -> AsyncIterator[StartNotifier]:
    """Start notifier applications (``init_app``) on 127.0.0.1; all are stopped afterwards."""
    started: list[Client] = []

    async def start(*, broker: Broker | None = None, settings: Settings = settings,
                    keepalive_seconds: float = 15.0,
                    stream_queue_bound: int = DEFAULT_BOUND) -> Notifier:
        app = init_app(settings, broker=broker, keepalive_seconds=keepalive_seconds,
                       stream_queue_bound=stream_queue_bound)
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


async def logged(db: AsyncDatabase[Document], count: int, timeout: float = 10) -> None:
    """Wait until the update log holds ``count`` entries."""

    async def enough() -> bool:
        return await db[PROJECT_UPDATES].count_documents({}) >= count

    await eventually(enough, timeout=timeout, what=f"{count} entries in the update log")
