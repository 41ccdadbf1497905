"""``posts list|requeue``: status transitions of system posts, announced, and sent again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker.service import lifespan as tracker_lifespan
from shared.broker import AckPolicy, Broker
from shared.documents import PostStatus
from shared.messages import ProjectUpdated
from shared.mongo import SYSTEM_POSTS, Document
from shared.settings import Settings
from tests.support.documents import insert_post, insert_project
from tests.support.ops import Ops
from tests.support.sandbox import RunningSandbox
from tests.support.waiting import eventually

NOW = datetime.now(UTC).replace(microsecond=0)
REFUSED = "VK error 214 in wall.post: Access to adding post denied"
# What a tracker leaves on a post that failed (see services/post_tracker/__init__.py).
FAILED_BOOKKEEPING: dict[str, Any] = {
    "claimed_by": "host:1:abc", "claimed_at": NOW, "sent_text": "Hello", "correlation_id": "c-1",
    "guid": "0123abcd", "resends": 1, "wall_read_at": NOW, "outcome_unknown": False,
    "attempts": 3, "not_before": NOW, "error_code": 214,
    "failed_at": NOW, "last_error": "VK error 6 in wall.post: Too many requests",
    "last_error_code": 6,
}
CLEARED = ("not_before", "claimed_by", "claimed_at", "sent_text", "outcome_unknown",
           "published_at", "error_code", "failed_at", "guid", "resends", "wall_read_at")


async def post(db: AsyncDatabase[Document], post_id: ObjectId) -> Document:
    document = await db[SYSTEM_POSTS].find_one({"_id": post_id})
    assert document is not None
    return document


class Inbox:
    """``ProjectUpdated`` messages as the notifier would receive them."""

    def __init__(self) -> None:
        self.messages: list[ProjectUpdated] = []

    async def __call__(self, message: ProjectUpdated) -> None:
        self.messages.append(message)


@pytest.fixture
async def inbox(broker: Broker) -> AsyncIterator[Inbox]:
    collected = Inbox()
    consumer = await broker.consume(broker.topology.notifier_queue, ProjectUpdated, collected,
                                    AckPolicy(shutdown_grace_seconds=1))
    yield collected
    await consumer.stop()


@pytest.fixture
async def project(db: AsyncDatabase[Document]) -> str:
    return await insert_project(db, group_id=1, _id="p")


class TestPostsList:
    async def test_filters_by_project_and_status(self, ops: Ops, db: AsyncDatabase[Document],
                                                 project: str) -> None:
        """Posts by publication date with status, attempts, VK id and error; filters narrow."""
        await insert_project(db, group_id=2, _id="q")
        failed = await insert_post(db, "p", status=PostStatus.ERROR, at=NOW + timedelta(hours=1),
                                   error=REFUSED, attempts=1)
        await insert_post(db, "p", status=PostStatus.PENDING, at=NOW,
                          last_error="VK error 6 in wall.post: Too many requests")
        await insert_post(db, "q", status=PostStatus.ERROR, at=NOW, error=REFUSED)

        errors = await ops("posts", "list", "--project", "p", "--status", "error")
        assert errors.code == 0, errors.err
        header, [row] = errors.out.splitlines()[1], errors.out.splitlines()[2:]
        assert errors.out.splitlines()[0] == "1 system post(s)"
        assert header.split()[:4] == ["ID", "PROJECT", "STATUS", "PUBLICATION"]
        assert row.split()[:7] == [str(failed), "p", "error",
                                   *(NOW + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%SZ").split(),
                                   "1", "-"]
        assert row.endswith(REFUSED)

        everything = await ops("posts", "list", "--limit", "2")
        lines = everything.out.splitlines()
        assert lines[0] == "3 system post(s)"
        assert [line.split()[2] for line in lines[2:4]] == ["pending_publication", "error"]
        assert lines[2].endswith("last: VK error 6 in wall.post: Too many requests")
        assert lines[4] == "… 1 more (--limit)"

    async def test_unknown_project(self, ops: Ops) -> None:
        """Filtering by a project that does not exist is an error, not an empty list."""
        result = await ops("posts", "list", "--project", "nope")
        assert (result.code, result.err) == (1, "error: unknown project: nope\n")


class TestPostsRequeue:
    async def test_error_post_goes_back_to_pending_and_is_announced(
            self, ops: Ops, db: AsyncDatabase[Document], project: str, inbox: Inbox) -> None:
        """error → pending_publication: error and VK id cleared, retry budget and claim reset,
        the failure kept as last_error, the correlation id kept; ProjectUpdated published."""
        post_id = await insert_post(db, "p", status=PostStatus.ERROR, at=NOW, error=REFUSED,
                                    **FAILED_BOOKKEEPING)
        result = await ops("posts", "requeue", str(post_id))
        assert result.code == 0, result.err
        assert result.out == f"requeued {post_id} (error → pending_publication)\n"
        after = await post(db, post_id)
        assert {key: after[key] for key in ("status", "error", "vk_post_id", "attempts",
                                            "last_error", "last_error_code", "correlation_id")} == {
            "status": "pending_publication", "error": None, "vk_post_id": None, "attempts": 0,
            "last_error": REFUSED, "last_error_code": 214, "correlation_id": "c-1"}
        assert not set(CLEARED) & set(after)

        async def announced() -> list[ProjectUpdated]:
            return inbox.messages
        [update] = await eventually(announced, what="the ProjectUpdated announcement")
        assert (update.project_id, update.reason, update.correlation_id) == (
            "p", "system_post", "c-1")

    async def test_possible_error_needs_force(self, ops: Ops, db: AsyncDatabase[Document],
                                              project: str) -> None:
        """A possible_error post may be on the wall: refused without --force, requeued with it."""
        post_id = await insert_post(db, "p", status=PostStatus.POSSIBLE_ERROR, at=NOW, vk_post_id=77,
                                    error="not found on the wall within 300 s",
                                    published_at=NOW, claimed_by="host:1:abc", claimed_at=NOW)
        refused = await ops("posts", "requeue", str(post_id))
        assert (refused.code, refused.out) == (1, "")
        assert refused.err == (f"error: post {post_id} is possible_error: it may be on the wall "
                               "already; check the community's wall, then requeue it with --force\n")
        assert (await post(db, post_id))["status"] == "possible_error"

        forced = await ops("posts", "requeue", "--force", str(post_id))
        assert forced.code == 0, forced.err
        after = await post(db, post_id)
        assert (after["status"], after["vk_post_id"], after["last_error"]) == (
            "pending_publication", None, "not found on the wall within 300 s")
        assert "published_at" not in after and "claimed_by" not in after

    async def test_by_project_and_status(self, ops: Ops, db: AsyncDatabase[Document],
                                         project: str) -> None:
        """--project and --status requeue exactly that project's posts in that status."""
        await insert_project(db, group_id=2, _id="q")
        mine = [await insert_post(db, "p", status=PostStatus.ERROR, at=NOW, error=REFUSED) for _ in range(2)]
        theirs = await insert_post(db, "q", status=PostStatus.ERROR, at=NOW, error=REFUSED)
        unsure = await insert_post(db, "p", status=PostStatus.POSSIBLE_ERROR, at=NOW, error="not found")
        result = await ops("posts", "requeue", "--project", "p", "--status", "error")
        assert result.code == 0, result.err
        assert len(result.out.splitlines()) == 2
        statuses = [(await post(db, post_id))["status"] for post_id in (*mine, theirs, unsure)]
        assert statuses == ["pending_publication", "pending_publication", "error",
                            "possible_error"]

        unforced = await ops("posts", "requeue", "--project", "p", "--status", "possible_error")
        assert unforced.code == 2
        assert unforced.err == ("error: possible_error posts may already be on the wall; check "
                                "it, then add --force to requeue them\n")
        forced = await ops("posts", "requeue", "--project", "p", "--status", "possible_error",
                           "--force")
        assert forced.code == 0, forced.err
        assert (await post(db, unsure))["status"] == "pending_publication"

    async def test_only_failed_posts_are_requeued(self, ops: Ops, db: AsyncDatabase[Document],
                                                  project: str) -> None:
        """A pending post and an unknown id are refused (one warning each, exit 1); the error
        post among them is requeued."""
        pending = await insert_post(db, "p", status=PostStatus.PENDING, at=NOW)
        failed = await insert_post(db, "p", status=PostStatus.ERROR, at=NOW, error=REFUSED)
        missing = str(ObjectId())
        result = await ops("posts", "requeue", str(pending), missing, str(failed))
        assert result.code == 1
        assert result.out == f"requeued {failed} (error → pending_publication)\n"
        assert result.err.splitlines() == [
            f"warning: no system post {missing}",
            f"warning: post {pending} is pending_publication: only error and possible_error "
            "posts can be requeued",
            "error: 2 post(s) not requeued"]

    @pytest.mark.parametrize("argv", [
        ["posts", "requeue"],
        ["posts", "requeue", "abc", "--project", "p", "--status", "error"],
        ["posts", "requeue", "--project", "p"],
    ])
    async def test_selection_usage_errors(self, ops: Ops, argv: list[str]) -> None:
        """Posts are named by id or by --project and --status together: else exit 2."""
        result = await ops(*argv)
        assert (result.code, result.out) == (2, "")
        assert result.err.startswith("error: name ")


class TestRequeuedPostIsPublished:
    async def test_tracker_sends_the_requeued_post(
            self, ops: Ops, vk_settings: Settings, vk_sandbox: RunningSandbox,
            db: AsyncDatabase[Document]) -> None:
        """With a post tracker running, a requeued error post is published and verified."""
        community = await vk_sandbox.control.create_community()
        admin = await vk_sandbox.control.create_user(admin_of=[community.group_id])
        project_id = await insert_project(db, group_id=community.group_id, token=admin.token)
        post_id = await insert_post(db, project_id, "Second chance", status=PostStatus.ERROR, at=NOW,
                                    error=REFUSED, **FAILED_BOOKKEEPING)
        async with tracker_lifespan(vk_settings):
            result = await ops("posts", "requeue", str(post_id))
            assert result.code == 0, result.err

            async def on_the_wall() -> bool:
                wall = await vk_sandbox.control.wall(community.group_id)
                return any(item["text"] == "Second chance" for item in wall["published"])

            await eventually(on_the_wall, what="the requeued post on the wall")

            async def verified() -> bool:  # found on the wall, the record is deleted
                return await db[SYSTEM_POSTS].count_documents({"_id": post_id}) == 0

            await eventually(verified, what="the requeued post verified")
