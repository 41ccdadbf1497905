"""The update notifier under test: a running application with a client, the update log fed
through the real broker, and its change-stream follower run on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.fanout import DEFAULT_BOUND
from services.update_notifier.head import DEFAULT_HEAD_ENTRIES, HeadWindow
from services.update_notifier.keys import HEAD
from services.update_notifier.tailer import follow_log
from services.update_notifier.update_log import Entry, UpdateLog
from shared.broker import Broker
from shared.change_stream import stop_following
from shared.messages import ProjectUpdated
from shared.mongo import PROJECT_UPDATES, ContentType, Document
from shared.settings import Settings
from tests.support.waiting import eventually

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


class Follower:
    """:func:`follow_log` in a task, with ``head`` (a fresh one if none is given); ``seqs``
    are the entries it reported, which is what SSE streams are told."""

    def __init__(self, update_log: UpdateLog, head: HeadWindow | None = None, *,
                 after: int) -> None:
        self.head = HeadWindow() if head is None else head
        self.seqs: list[int] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(follow_log(update_log, self._on_entry, after=after,
                                                    head=self.head))

    def _on_entry(self, entry: Entry) -> None:
        self.seqs.append(entry.seq)
        self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 10) -> list[int]:
        """The reported seqs, once there are ``count`` of them."""
        async with asyncio.timeout(timeout):
            while len(self.seqs) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.seqs

    async def caught_up(self, tail: int, timeout: float = 10) -> None:
        """Wait until the head is live and has followed the log up to ``tail``."""
        async def there() -> bool:
            return self.head.live and self.head.tail >= tail

        await eventually(there, timeout=timeout, what=f"the head live at {tail}")

    async def stop(self) -> None:
        await stop_following(self._task)
