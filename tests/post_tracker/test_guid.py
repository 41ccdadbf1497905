"""Re-sending an unknown outcome with the same guid, against the VK sandbox's ``guid``.

Each scenario hangs the first ``wall.post`` past the client's timeout (the outcome is
unknown) and fails the first look at the wall (error 10 on ``wall.get``), so the look
that decides on a re-send comes after the hung request has finished on VK's side —
which the call log's times prove.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from shared.broker import Broker
from shared.documents import PostStatus
from shared.mongo import Document
from shared.settings import Settings
from tests.post_tracker.test_lifecycle import WITH_CONTEXT
from tests.support.communities import new_community
from tests.support.documents import insert_post
from tests.support.sandbox import RunningSandbox
from tests.support.tracker import (
    UpdatesInbox,
    fast_options,
    published,
    running_trackers,
    wait_deleted,
    wait_status,
)

HANG_SECONDS = 0.8  # > the client's 0.5-s timeout: the tracker never sees the answer


async def hang_first_wall_post(sandbox: RunningSandbox, *, then_fail: bool) -> None:
    """The next wall.post hangs; with ``then_fail`` VK then fails it (error 10): nothing
    is posted. The next wall.get fails (error 10), so the first look cannot decide."""
    control = sandbox.control
    await control.inject_fault("latency", method="wall.post", seconds=HANG_SECONDS, count=1)
    if then_fail:
        await control.inject_fault("error", method="wall.post", code=10, count=1)
    await control.inject_fault("error", method="wall.get", code=10, count=1)


def guids(calls: list[dict[str, Any]]) -> set[str | None]:
    return {call["params"].get("guid") for call in calls}


class TestResendWithGuid:
    async def test_hung_request_that_posted_gets_the_same_id_back(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """The hung wall.post posted (hidden from wall.get a while): the re-send with
        the same guid answers that post's id, posts nothing new; verified by id, deleted."""
        community = await new_community(db, vk_sandbox)
        settings = tracker_settings.model_copy(update={"vk_timeout_seconds": 0.5})
        await hang_first_wall_post(vk_sandbox, then_fail=False)
        await vk_sandbox.control.inject_fault("hide_posts", group_id=community.group_id,
                                              seconds=3)
        post_id = await insert_post(db, community.project_id, "Maybe posted")
        with capture_logs(processors=WITH_CONTEXT) as logs:
            async with running_trackers(db, settings, broker,
                                        fast_options(interval_seconds=1.0)):
                await wait_deleted(db, post_id, timeout=15)
        wall = await published(vk_sandbox, community.group_id)
        calls = await vk_sandbox.control.calls("wall.post")
        assert len(wall) == 1 and len(calls) == 2
        first, resend = calls
        assert resend["at"] >= first["at"] + HANG_SECONDS  # after the hung one had posted
        assert len(guids(calls)) == 1 and None not in guids(calls)
        published_ids = [entry["vk_post_id"] for entry in logs
                         if entry["event"] == "post_published"]
        assert published_ids == [wall[0]["id"]]
        verified = [entry for entry in logs if entry["event"] == "post_verified"]
        assert [(entry["way"], entry["post_id"]) for entry in verified] == [("id", str(post_id))]

    async def test_hung_request_that_posted_nothing_is_posted_once(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """The hung wall.post failed on VK's side: not on the wall, so it is re-sent with
        the same guid, posted once, verified."""
        community = await new_community(db, vk_sandbox)
        settings = tracker_settings.model_copy(update={"vk_timeout_seconds": 0.5})
        await hang_first_wall_post(vk_sandbox, then_fail=True)
        post_id = await insert_post(db, community.project_id, "Not posted yet")
        async with running_trackers(db, settings, broker, fast_options(interval_seconds=1.0)):
            await wait_deleted(db, post_id, timeout=15)
        calls = await vk_sandbox.control.calls("wall.post")
        assert [call["error_code"] for call in calls] == [10, None]
        assert calls[1]["at"] >= calls[0]["at"] + HANG_SECONDS
        assert len(guids(calls)) == 1 and None not in guids(calls)
        assert [post["text"] for post in await published(vk_sandbox, community.group_id)] == [
            "Not posted yet"]

    async def test_resends_are_bounded_and_never_change_the_guid(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Every wall.post hangs and the post stays hidden: at most 1 + 3 sends, all with
        one guid, one post on the wall; then possible_error, "not found on the wall"."""
        community = await new_community(db, vk_sandbox)
        settings = tracker_settings.model_copy(update={"vk_timeout_seconds": 0.5})
        await vk_sandbox.control.inject_fault("latency", method="wall.post", seconds=0.7)
        await vk_sandbox.control.inject_fault("hide_posts", group_id=community.group_id,
                                              seconds=None)
        post_id = await insert_post(db, community.project_id, "Lost in the void")
        async with running_trackers(db, settings, broker,
                                    fast_options(verify_timeout_seconds=4.0)):
            document = await wait_status(db, post_id, PostStatus.POSSIBLE_ERROR, timeout=15)
            await inbox.wait_for(community.project_id, 1)
        assert document["error"] == "not found on the wall within 4 s"
        calls = await vk_sandbox.control.calls("wall.post")
        assert 2 <= len(calls) <= 4 and document["resends"] == len(calls) - 1
        assert len(guids(calls)) == 1 and None not in guids(calls)
        assert len(await published(vk_sandbox, community.group_id)) == 1  # VK did post it
