"""Post tracker tests: real mongod, real RabbitMQ, the VK sandbox in-process as VK."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker.decisions import RetryRules
from services.post_tracker.options import TrackerOptions
from services.post_tracker.tracker import Tracker
from shared.broker import AckPolicy, Broker
from shared.documents import PostStatus
from shared.messages import ProjectUpdated
from shared.mongo import GLOBAL_VARIABLES, PROJECTS, SYSTEM_POSTS, Document
from shared.retry import BackoffPolicy
from shared.settings import Settings
from shared.vk import VkClient
from tests.conftest import RunningSandbox
from tests.waiting import eventually

FAST_RETRY = RetryRules(
    max_attempts=3,
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


@dataclass(frozen=True)
class Community:
    """A sandbox community, its admin's user token, and the project pointing at it."""

    group_id: int
    token: str
    project_id: str


async def new_community(db: AsyncDatabase[Document], sandbox: RunningSandbox) -> Community:
    """A sandbox community with its own admin (so its own user token and rate limit)."""
    created = await sandbox.control.create_community()
    admin = await sandbox.control.create_user(admin_of=[created.group_id])
    project_id = f"project-{uuid.uuid4().hex[:8]}"
    await db[PROJECTS].insert_one({
        "_id": project_id, "name": created.name, "vk_group_id": created.group_id,
        "vk_confirmation_code": created.confirmation_code, "vk_callback_secret": "s3cret",
        "vk_user_token": admin.token})
    return Community(created.group_id, admin.token, project_id)


async def insert_post(db: AsyncDatabase[Document], project_id: str, text: str, *,
                      at: datetime | None = None, attachments: list[str] | None = None,
                      status: PostStatus = PostStatus.PENDING, **extra: Any) -> ObjectId:
    """A system post as the rest of the product writes it."""
    document: Document = {
        "project_id": project_id, "text": text, "attachments": attachments or [],
        "publication_date": at or now(), "status": status.value, "vk_post_id": None,
        "error": None, **extra,
    }
    result = await db[SYSTEM_POSTS].insert_one(document)
    assert isinstance(result.inserted_id, ObjectId)
    return result.inserted_id


async def insert_variable(db: AsyncDatabase[Document], name: str, value: str,
                          project_id: str | None = None) -> None:
    await db[GLOBAL_VARIABLES].insert_one({"name": name, "value": value, "project_id": project_id})


async def get_post(db: AsyncDatabase[Document], post_id: ObjectId) -> Document | None:
    return await db[SYSTEM_POSTS].find_one({"_id": post_id})


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


@pytest.fixture
async def inbox(broker: Broker) -> AsyncIterator[UpdatesInbox]:
    collected = UpdatesInbox()
    consumer = await broker.consume(broker.topology.notifier_queue, ProjectUpdated, collected,
                                    AckPolicy(prefetch=256, shutdown_grace_seconds=1))
    yield collected
    await consumer.stop()


@pytest.fixture
def tracker_settings(vk_settings: Settings) -> Settings:
    """VK is the sandbox; the client does not retry on its own, so the tracker's rules show."""
    return vk_settings.model_copy(update={"vk_max_attempts": 1, "vk_timeout_seconds": 2.0})


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
            await eventually(lambda: asyncio.sleep(0, all(t.watching for t in trackers)),
                             timeout=10, what="the trackers' change streams")
            yield trackers
        finally:
            await asyncio.gather(*(tracker.stop() for tracker in trackers))


def seconds_after(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
