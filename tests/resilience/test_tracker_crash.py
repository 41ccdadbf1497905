"""Scenario 3: ``kill -9`` of a post tracker between the claim and ``wall.post``, and between
``wall.post`` and storing ``vk_post_id``.

The contract (``services/post_tracker/__init__.py``): a post is sent by exactly one
claim and a crash records no unknown outcome, so it is never re-sent (and a re-send would
carry the same guid): no post is ever published twice;
a crash leaves it ``publishing`` and verification settles it — deleted when found on
the wall, ``possible_error`` when not found within ``TRACKER_VERIFY_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from datetime import UTC, datetime

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from shared.documents import PostStatus
from shared.mongo import SYSTEM_POSTS, Document
from shared.settings import Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import (
    plain_community,
    stack_settings,
    wall_post_calls,
    wall_texts,
)
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually

VERIFY_TIMEOUT = 6.0


async def final_state(db: AsyncDatabase[Document], post_id: ObjectId, timeout: float) -> str:
    """``verified`` once the post is deleted, or its terminal status."""
    async def settled() -> str | None:
        document = await db[SYSTEM_POSTS].find_one({"_id": post_id})
        if document is None:
            return "verified"
        return document["status"] if document["status"] in ("error", "possible_error") else None
    return await eventually(settled, timeout=timeout, what=f"post {post_id} settled")


async def publishing(db: AsyncDatabase[Document], post_id: ObjectId) -> Document | None:
    document = await db[SYSTEM_POSTS].find_one({"_id": post_id, "status": "publishing"})
    return document


class TestTrackerKilledAroundWallPost:
    async def test_killed_in_each_gap_nothing_is_published_twice(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """Two crashes per round (1 round; long: 4), then one restarted tracker settles all.

        * Tracker A dies while project X's ``wall.post`` is held 3 s in VK, which then
          publishes it: between wall.post and storing the id.
        * Tracker B (one call per 5 s per token) sends project Y's first post and claims
          the second, which waits for the rate limiter: it dies between that claim and
          its wall.post.

        The restarted tracker (or B) waits out the dead ones' project leases (10 s), never calls
        wall.post again, verifies the posts VK has by content and times the unsent one
        out to ``possible_error``. Every text is on the wall at most once.
        """
        rounds = mode.pick(1, 4)
        latency = 3.0
        base = stack_settings(vk_settings, tracker_interval_seconds=1.0, vk_timeout_seconds=10.0,
                              tracker_verify_timeout_seconds=VERIFY_TIMEOUT)
        slow = base.model_copy(update={"vk_user_rps": 0.2})
        x = await plain_community(db, vk_sandbox, logbook)
        y = await plain_community(db, vk_sandbox, logbook)
        outcomes: Counter[str] = Counter()
        texts: list[str] = []
        for round_number in range(rounds):
            tag = f"{round_number} {uuid.uuid4().hex[:6]}"
            await vk_sandbox.control.inject_fault("latency", method="wall.post", seconds=latency)

            tracker_a = await services.start("post_tracker", base)
            x_text = f"X between wall.post and the id {tag}"
            x_post = await insert_post(db, x.project_id, x_text)

            async def x_in_flight(x_post: ObjectId = x_post, x_text: str = x_text) -> bool:
                return (await publishing(db, x_post) is not None
                        and await wall_post_calls(vk_sandbox, x_text) == 1)

            await eventually(x_in_flight, timeout=15, what="X's wall.post in flight")
            await tracker_a.kill()
            # Checked at once: tracker B may take X's project over once A's lease (10 s)
            # has run out, and verify it.
            document = await publishing(db, x_post)
            assert document is not None and document["vk_post_id"] is None

            tracker_b = await services.start("post_tracker", slow)
            y_texts = [f"Y first {tag}", f"Y claimed, never sent {tag}"]
            now = datetime.now(UTC)
            y_posts = [await insert_post(db, y.project_id, text, at=now)
                       for text in y_texts]

            async def y_claimed_not_sent(y_posts: list[ObjectId] = y_posts,
                                         y_texts: list[str] = y_texts) -> bool:
                return (await publishing(db, y_posts[1]) is not None
                        and await wall_post_calls(vk_sandbox, y_texts[0]) == 1
                        and await wall_post_calls(vk_sandbox, y_texts[1]) == 0)

            await eventually(y_claimed_not_sent, timeout=20, what="Y's second post claimed, unsent")
            await tracker_b.kill()
            await vk_sandbox.control.clear_faults()
            document = await publishing(db, y_posts[1])  # Y's first may be verified already
            assert document is not None and document["vk_post_id"] is None

            await services.start("post_tracker", base)
            settled = [await final_state(db, post_id, timeout=VERIFY_TIMEOUT + 45)
                       for post_id in (x_post, *y_posts)]
            assert settled == ["verified", "verified", "possible_error"]
            outcomes.update(settled)
            texts += [x_text, *y_texts]
            for process in services.named("post_tracker"):
                await process.stop()

        calls = Counter(call["params"].get("message") for call in
                        await vk_sandbox.control.calls("wall.post"))
        on_walls = (await wall_texts(vk_sandbox, x.group_id)) + (await wall_texts(vk_sandbox, y.group_id))
        assert {text: calls[text] for text in texts} == {
            text: 0 if "never sent" in text else 1 for text in texts}
        assert {text: on_walls[text] for text in texts} == {
            text: 0 if "never sent" in text else 1 for text in texts}
        figures.record(kills=2 * rounds, posts=len(texts), outcomes=dict(outcomes),
                       wall_post_calls=sum(calls[text] for text in texts),
                       published=sum(on_walls[text] for text in texts), double_publications=0)

    async def test_a_claim_left_by_a_dead_tracker_is_never_sent(
        self, vk_settings: Settings, vk_sandbox: RunningSandbox, db: AsyncDatabase[Document],
        services: ServiceGroup, logbook: LogBook,
    ) -> None:
        """The exact document a crash right after the claim leaves (publishing, claimed by
        a tracker that no longer exists, no vk_post_id): never sent, possible_error."""
        stack = stack_settings(vk_settings, tracker_interval_seconds=1.0,
                               tracker_verify_timeout_seconds=VERIFY_TIMEOUT)
        community = await plain_community(db, vk_sandbox, logbook)
        text = f"claimed by the dead {uuid.uuid4().hex[:6]}"
        post_id = await insert_post(
            db, community.project_id, text, status=PostStatus.PUBLISHING,
            claimed_by=f"{socket.gethostname()}:999999:dead00", claimed_at=datetime.now(UTC),
            sent_text=text, correlation_id=uuid.uuid4().hex, outcome_unknown=False)
        await services.start("post_tracker", stack)
        assert await final_state(db, post_id, timeout=VERIFY_TIMEOUT + 20) == "possible_error"
        assert await wall_post_calls(vk_sandbox, text) == 0
        document = await db[SYSTEM_POSTS].find_one({"_id": post_id})
        assert document is not None and "not found on the wall" in document["error"]
