"""Steady background activity for the scenarios: wall changes (each fires a VK callback)
and system posts to publish."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import SYSTEM_POSTS, Document
from tests.support.background import in_background
from tests.support.communities import Community
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually


class WallActivity:
    """Changes the communities' walls round-robin, one change per ``interval``: a new
    post, a new scheduled post (an hour ahead), the deletion of a scheduled one — what
    admins do on VK, each change followed by the matching callback to the gateway."""

    def __init__(self, sandbox: RunningSandbox, communities: Sequence[Community],
                 interval: float) -> None:
        self._sandbox = sandbox
        self._communities = list(communities)
        self._interval = interval
        self._scheduled: dict[int, list[int]] = {c.group_id: [] for c in communities}
        self.changes: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.changes.values())

    async def _change(self, step: int) -> None:
        community = self._communities[step % len(self._communities)]
        scheduled = self._scheduled[community.group_id]
        kind = (step // len(self._communities)) % 3
        control = self._sandbox.control
        if kind == 2 and scheduled:
            await control.delete_post(community.group_id, scheduled.pop(0))
            self.changes["scheduled_deleted"] += 1
        elif kind == 1:
            post = await control.create_post(community.group_id, f"plan {step}",
                                             publish_date=int(time.time()) + 3600)
            scheduled.append(post["id"])
            self.changes["scheduled"] += 1
        else:
            await control.create_post(community.group_id, f"post {step}")
            self.changes["published"] += 1

    async def _run(self) -> None:
        step = 0
        next_at = time.monotonic()
        while True:
            await self._change(step)
            step += 1
            next_at += self._interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def wait_for(self, total: int, timeout: float = 30) -> None:
        """Until ``total`` changes have been made since the start."""
        async def enough() -> bool:
            return self.total >= total
        await eventually(enough, timeout=timeout, what=f"{total} wall changes")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WallActivity]:
        async with in_background(self._run()):
            yield self


class SystemPostFeed:
    """Inserts system posts round-robin over the projects, one per ``interval``, each
    due now or within ``spread`` seconds, as the planner's users schedule them."""

    def __init__(self, db: AsyncDatabase[Document], communities: Sequence[Community],
                 interval: float, spread: float = 2.0) -> None:
        self._db = db
        self._communities = list(communities)
        self._interval = interval
        self._spread = spread
        self.posts: dict[ObjectId, tuple[Community, str]] = {}

    async def insert(self, step: int) -> ObjectId:
        community = self._communities[step % len(self._communities)]
        text = f"system post {step} {uuid.uuid4().hex[:8]}"
        due = datetime.now(UTC) + timedelta(seconds=(step % 5) * self._spread / 5)
        post_id = await insert_post(self._db, community.project_id, text, at=due)
        self.posts[post_id] = (community, text)
        return post_id

    async def _run(self) -> None:
        step = len(self.posts)
        next_at = time.monotonic()
        while True:
            await self.insert(step)
            step += 1
            next_at += self._interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SystemPostFeed]:
        async with in_background(self._run()):
            yield self

    async def unsettled(self) -> int:
        """Posts not yet verified (deleted) nor given up on."""
        return await self._db[SYSTEM_POSTS].count_documents(
            {"_id": {"$in": list(self.posts)}, "status": {"$nin": ["error", "possible_error"]}})
