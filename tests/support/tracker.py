"""The post tracker under test: test-sized options, trackers started in-process, and
waiting on what they do to posts and the notifier's queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker.decisions import RetryRules
from services.post_tracker.options import TrackerOptions
from services.post_tracker.tracker import Tracker
from shared.broker import Broker
from shared.documents import PostStatus
from shared.messages import ProjectUpdated
from shared.mongo import Document
from shared.retry import BackoffPolicy
from shared.settings import Settings
from shared.vk import VkClient
from tests.support.documents import get_post
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually

FAST_RETRY = RetryRules(
    max_attempts=3,
    max_refusals=3,
    backoff=BackoffPolicy(base_seconds=0.2, multiplier=1.5, max_seconds=1.0, jitter=0.0),
    quota_backoff=BackoffPolicy(base_seconds=0.5, multiplier=1.0, max_seconds=0.5, jitter=0.0),
)


def fast_options(**overrides: Any) -> TrackerOptions:
    """Test-sized timings: a 0.5-s cycle, quick retries and leases."""
    base = TrackerOptions(interval_seconds=0.5, verify_timeout_seconds=30.0, lease_seconds=6.0,
                          busy_recheck_seconds=0.2, poll_fallback_seconds=0.5,
                          stream_retry_seconds=5.0, error_pause_seconds=0.5,
                          stop_grace_seconds=5.0, retry=FAST_RETRY)
    return dataclasses.replace(base, **overrides)


def now() -> datetime:
    return datetime.now(UTC)


async def published(sandbox: RunningSandbox, group_id: int) -> list[dict[str, Any]]:
    """Every published post of the community, hidden ones included (ground truth)."""
    return (await sandbox.control.wall(group_id))["published"]


def state_is(db: AsyncDatabase[Document], post_id: ObjectId,
             check: Callable[[Document | None], bool]) -> Callable[[], Awaitable[Document | bool]]:
    """A probe for :func:`eventually`: the post's document once ``check`` holds (True if gone)."""
    async def probe() -> Document | bool:
        document = await get_post(db, post_id)
        if not check(document):
            return False
        return document if document is not None else True
    return probe


async def wait_status(db: AsyncDatabase[Document], post_id: ObjectId, status: PostStatus,
                      timeout: float = 10) -> Document:
    document = await eventually(
        state_is(db, post_id, lambda doc: doc is not None and doc["status"] == status.value),
        timeout=timeout, what=f"post {post_id} to become {status.value}")
    assert isinstance(document, dict)
    return document


async def wait_deleted(db: AsyncDatabase[Document], post_id: ObjectId,
                       timeout: float = 10) -> None:
    await eventually(state_is(db, post_id, lambda doc: doc is None), timeout=timeout,
                     what=f"post {post_id} to be verified and deleted")


class UpdatesInbox:
    """``ProjectUpdated`` messages taken from the notifier's queue, as the notifier would."""

    def __init__(self) -> None:
        self.messages: list[ProjectUpdated] = []

    async def __call__(self, message: ProjectUpdated) -> None:
        self.messages.append(message)

    def for_project(self, project_id: str) -> list[ProjectUpdated]:
        return [message for message in self.messages if message.project_id == project_id]

    async def wait_for(self, project_id: str, count: int, timeout: float = 10) -> list[ProjectUpdated]:
        async def enough() -> list[ProjectUpdated] | None:
            found = self.for_project(project_id)
            return found if len(found) >= count else None
        return await eventually(enough, timeout=timeout,
                                what=f"{count} ProjectUpdated for {project_id}")


@contextlib.asynccontextmanager
async def running_trackers(db: AsyncDatabase[Document], settings: Settings, broker: Broker,
                           options: TrackerOptions, count: int = 1) -> AsyncIterator[list[Tracker]]:
    """``count`` tracker instances (each with its own VK client), started and watching."""
    async with contextlib.AsyncExitStack() as stack:
        trackers: list[Tracker] = []
        for index in range(count):
            vk = await stack.enter_async_context(VkClient.from_settings(settings))
            trackers.append(Tracker(db, vk, broker, options, instance_id=f"test-tracker-{index}"))
        for tracker in trackers:
            tracker.start()
        try:
            await eventually(lambda: all(t.watching for t in trackers),
                             timeout=10, what="the trackers' change streams")
            yield trackers
        finally:
            await asyncio.gather(*(tracker.stop() for tracker in trackers))


def seconds_after(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
