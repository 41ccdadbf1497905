"""Each status transition of a system post, against real mongod, RabbitMQ and the VK sandbox."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase
from structlog.testing import capture_logs

from services.post_tracker.tracker import Tracker
from shared.broker import Broker
from shared.documents import PostStatus
from shared.mongo import GLOBAL_VARIABLES, Document
from shared.retry import BackoffPolicy
from shared.settings import Settings
from shared.vk import VkClient
from tests.support.communities import new_community
from tests.support.documents import get_post, insert_post, insert_variable
from tests.support.sandbox import RunningSandbox
from tests.support.tracker import (
    FAST_RETRY,
    UpdatesInbox,
    fast_options,
    now,
    published,
    running_trackers,
    wait_deleted,
    wait_status,
)
from tests.support.waiting import eventually

WITH_CONTEXT = [structlog.contextvars.merge_contextvars]


class TestPublishAndVerify:
    async def test_due_post_is_published_verified_and_deleted(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A due post goes to the wall once, as the community, and its record is deleted."""
        community = await new_community(db, vk_sandbox)
        post_id = await insert_post(db, community.project_id, "Hello, wall",
                                    attachments=["photo-1_10", "photo-1_11"])
        with capture_logs(processors=WITH_CONTEXT) as logs:
            async with running_trackers(db, tracker_settings, broker, fast_options()):
                await wait_deleted(db, post_id)
        wall = await published(vk_sandbox, community.group_id)
        assert [(post["text"], post["from_id"]) for post in wall] == [
            ("Hello, wall", -community.group_id)]
        assert [item["photo"]["id"] for item in wall[0]["attachments"]] == [10, 11]
        events = {entry["event"]: entry for entry in logs}
        assert events["post_published"]["vk_post_id"] == wall[0]["id"]
        assert events["post_verified"]["way"] == "id"
        for name in ("post_claimed", "post_published", "post_verified"):
            assert events[name]["post_id"] == str(post_id)
            assert events[name]["project_id"] == community.project_id

    async def test_every_change_is_announced(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Claimed (publishing), published and verified-and-deleted each send
        ProjectUpdated(reason=system_post): the dashboard shows "publishing" at once."""
        community = await new_community(db, vk_sandbox)
        post_id = await insert_post(db, community.project_id, "Announce me")
        with capture_logs(processors=WITH_CONTEXT) as logs:
            async with running_trackers(db, tracker_settings, broker, fast_options()):
                await wait_deleted(db, post_id)
                messages = await inbox.wait_for(community.project_id, 3)
        assert [message.reason for message in messages] == ["system_post"] * 3
        # The first is the claim's: sent before wall.post was called.
        events = [entry["event"] for entry in logs]
        assert events.index("post_claimed") < events.index("post_published")
        # One post, one correlation id across its changes.
        assert len({message.correlation_id for message in messages}) == 1

    async def test_variables_are_substituted(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Project values win over global ones; null is empty text; a double holding a
        whole number is written as the user wrote it."""
        community = await new_community(db, vk_sandbox)
        await insert_variable(db, "city", "Moscow")
        await insert_variable(db, "city", "Kazan", community.project_id)
        await insert_variable(db, "phone", "+7 100")
        await insert_variable(db, "phone", "not ours", "another-project")
        await db[GLOBAL_VARIABLES].insert_many([
            {"name": "price", "value": 100.0, "project_id": None},
            {"name": "note", "value": None, "project_id": community.project_id}])
        post_id = await insert_post(db, community.project_id,
                                    "Come to {{ city }}! Call {{phone}}. {{price}} RUB{{note}}")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            await wait_deleted(db, post_id)
        wall = await published(vk_sandbox, community.group_id)
        assert [post["text"] for post in wall] == ["Come to Kazan! Call +7 100. 100 RUB"]

    async def test_unknown_variables_are_not_published(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A placeholder naming no variable: error naming them, announced, nothing sent."""
        community = await new_community(db, vk_sandbox)
        await insert_variable(db, "city", "Kazan")
        post_id = await insert_post(db, community.project_id,
                                    "Hi {{city}} {{nope_var}} {{ price }} {{nope_var}}")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            document = await wait_status(db, post_id, PostStatus.ERROR)
            await inbox.wait_for(community.project_id, 1)
        assert document["error"] == "unknown variable(s): nope_var, price"
        assert "claimed_by" not in document
        assert await vk_sandbox.control.calls("wall.post") == []

    async def test_future_post_waits(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A post dated later stays pending and untouched while other posts go out."""
        community = await new_community(db, vk_sandbox)
        later = await insert_post(db, community.project_id, "later",
                                  at=now() + timedelta(hours=1))
        due = await insert_post(db, community.project_id, "now")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            await wait_deleted(db, due)
        document = await db["system_posts"].find_one({"_id": later})
        assert document is not None and document["status"] == PostStatus.PENDING.value
        assert "claimed_by" not in document
        assert [post["text"] for post in await published(vk_sandbox, community.group_id)] == [
            "now"]


class TestVerification:
    async def test_hidden_post_stays_publishing_until_visible(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Way 1: a post VK accepted but does not show yet is verified once it shows."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("hide_posts", group_id=community.group_id,
                                              seconds=2)
        post_id = await insert_post(db, community.project_id, "Shy post")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            waiting = await eventually(
                lambda: db["system_posts"].find_one({"_id": post_id, "vk_post_id": {"$ne": None}}),
                what="the post id to be stored")
            assert waiting["status"] == PostStatus.PUBLISHING.value
            await wait_deleted(db, post_id, timeout=10)
        assert len(await published(vk_sandbox, community.group_id)) == 1

    async def test_post_claimed_by_a_dead_tracker_is_verified_not_resent(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A crash between claim and record: found by content, or timed out; never resent."""
        community = await new_community(db, vk_sandbox)
        claimed = now() - timedelta(seconds=1)
        bookkeeping: dict[str, Any] = {"claimed_by": "dead-tracker", "claimed_at": claimed}
        on_wall = await insert_post(db, community.project_id, "Made it",
                                    status=PostStatus.PUBLISHING, sent_text="Made it", **bookkeeping)
        await vk_sandbox.control.create_post(community.group_id, "made   IT")
        never_sent = await insert_post(db, community.project_id, "Did not",
                                       status=PostStatus.PUBLISHING, sent_text="Did not",
                                       **bookkeeping)
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(verify_timeout_seconds=2.0)):
            await wait_deleted(db, on_wall)
            await wait_status(db, never_sent, PostStatus.POSSIBLE_ERROR)
        assert await vk_sandbox.control.calls("wall.post") == []


    async def test_unreadable_wall_is_its_own_possible_error(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A post VK confirmed with an id, and a wall that could not be read for the whole
        window: possible_error "not verified: wall unreadable: VK error 5 …", not "not
        found"; nothing is re-sent."""
        community = await new_community(db, vk_sandbox)
        wall_post = await vk_sandbox.control.create_post(community.group_id, "Confirmed")
        await vk_sandbox.control.inject_fault("error", method="wall.get", code=5, count=1000)
        post_id = await insert_post(db, community.project_id, "Confirmed",
                                    status=PostStatus.PUBLISHING, sent_text="Confirmed",
                                    claimed_by="gone", claimed_at=now(), guid="g",
                                    vk_post_id=wall_post["id"])
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(verify_timeout_seconds=2.0)):
            document = await wait_status(db, post_id, PostStatus.POSSIBLE_ERROR)
        assert document["error"].startswith("not verified: wall unreadable: VK error 5 in "
                                            "wall.get")
        assert await vk_sandbox.control.calls("wall.post") == []

    async def test_wall_read_once_then_unreadable_is_not_found(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A look that read the wall and did not find the post counts: when later looks
        fail, the post is "not found on the wall", with the last failure added."""
        community = await new_community(db, vk_sandbox)
        post_id = await insert_post(db, community.project_id, "Never made it",
                                    status=PostStatus.PUBLISHING, sent_text="Never made it",
                                    claimed_by="gone", claimed_at=now())
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(verify_timeout_seconds=2.0)):
            await eventually(lambda: db["system_posts"].find_one(
                {"_id": post_id, "wall_read_at": {"$ne": None}}), what="a look at the wall")
            await vk_sandbox.control.inject_fault("error", method="wall.get", code=5, count=1000)
            document = await wait_status(db, post_id, PostStatus.POSSIBLE_ERROR)
        assert document["error"].startswith(
            "not found on the wall within 2 s (the last look failed: wall unreadable: VK error 5")

    async def test_content_match_reads_back_past_the_first_page(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Way 2 pages back (offset) until it passes posts older than the claim: a post
        with 25 newer ones above it (one page is 20) is still found, not resent."""
        community = await new_community(db, vk_sandbox)
        claimed = now() - timedelta(seconds=2)
        await vk_sandbox.control.create_post(community.group_id, "older post")
        await vk_sandbox.control.create_post(community.group_id, "Deep  down")
        for index in range(25):
            await vk_sandbox.control.create_post(community.group_id, f"newer {index}")
        post_id = await insert_post(db, community.project_id, "Deep down",
                                    status=PostStatus.PUBLISHING, sent_text="Deep down",
                                    claimed_by="gone", claimed_at=claimed)
        with capture_logs(processors=WITH_CONTEXT) as logs:
            async with running_trackers(db, tracker_settings, broker, fast_options()):
                await wait_deleted(db, post_id)
        verified = [entry for entry in logs if entry["event"] == "post_verified"]
        assert [entry["way"] for entry in verified] == ["content"]
        offsets = [call["params"].get("offset") for call in
                   await vk_sandbox.control.calls("wall.get")]
        assert offsets[:2] == ["0", "20"]
        assert await vk_sandbox.control.calls("wall.post") == []


class TestErrors:
    async def test_permanent_error_is_recorded_with_code(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """VK refusing the post (214) → error with the code and message, announced."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("error", method="wall.post", code=214, count=1)
        post_id = await insert_post(db, community.project_id, "Refused")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            document = await wait_status(db, post_id, PostStatus.ERROR)
            await inbox.wait_for(community.project_id, 1)
        assert document["error_code"] == 214
        assert document["error"].startswith("VK error 214 in wall.post")
        assert await published(vk_sandbox, community.group_id) == []

    async def test_bad_token_error_never_contains_the_token(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """An invalid token → error 5; the token appears nowhere in the record."""
        community = await new_community(db, vk_sandbox)
        token = "revoked-user-token-0123456789"
        await db["projects"].update_one({"_id": community.project_id},
                                        {"$set": {"vk_user_token": token}})
        post_id = await insert_post(db, community.project_id, "No access")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            document = await wait_status(db, post_id, PostStatus.ERROR)
        assert document["error_code"] == 5
        assert token not in str(document)

    async def test_unknown_project_is_an_error_without_calling_vk(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """A post of a project that does not exist fails at once; VK is not called."""
        post_id = await insert_post(db, "no-such-project", "Orphan")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            document = await wait_status(db, post_id, PostStatus.ERROR)
        assert document["error"] == "project not found"
        assert await vk_sandbox.control.calls("wall.post") == []

    async def test_flood_control_retries_then_publishes(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """9 twice: back to pending with attempts and a back-off each time, then published."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("error", method="wall.post", code=9, count=2)
        post_id = await insert_post(db, community.project_id, "Persistent")
        with capture_logs(processors=WITH_CONTEXT) as logs:
            async with running_trackers(db, tracker_settings, broker, fast_options()):
                await wait_deleted(db, post_id)
                # (claimed, retry) twice, claimed, published, verified
                await inbox.wait_for(community.project_id, 7)
        calls = await vk_sandbox.control.calls("wall.post")
        assert [call["error_code"] for call in calls] == [9, 9, None]
        # The back-off (0.2 s, then 0.3 s) held the post back between attempts.
        gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(calls)]
        assert gaps[0] >= 0.2 and gaps[1] >= 0.3, gaps
        retries = [(entry["attempts"], entry["refusals"]) for entry in logs
                   if entry["event"] == "post_retry_scheduled"]
        assert retries == [(0, 1), (0, 2)]  # refused calls spend no attempt
        assert len(await published(vk_sandbox, community.group_id)) == 1

    async def test_refusals_are_bounded_by_their_own_count(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Error 9 every time, a client that retries 4 times itself, 3 refused tries
        allowed: 3 × 4 wall.post calls, none spending the attempt budget (5), then error
        saying so."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("error", method="wall.post", code=9, count=100)
        post_id = await insert_post(db, community.project_id, "Flooded")
        rules = dataclasses.replace(FAST_RETRY, max_attempts=5, max_refusals=3)
        client = VkClient.from_settings(tracker_settings.model_copy(
            update={"vk_max_attempts": 4}))
        client.backoff = BackoffPolicy(base_seconds=0.01, max_seconds=0.05, jitter=0)
        async with client:
            tracker = Tracker(db, client, broker, fast_options(retry=rules), instance_id="budget")
            tracker.start()
            try:
                document = await wait_status(db, post_id, PostStatus.ERROR, timeout=15)
            finally:
                await tracker.stop()
        assert (document["attempts"], document["error_code"]) == (0, 9)
        assert document["error"].startswith("gave up after 3 refused tries: VK error 9")
        assert len(await vk_sandbox.control.calls("wall.post")) == 12

    async def test_retries_are_bounded(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """6 every time: after max_refusals (3) refused tries the post is error, with
        code 6 and no attempt spent."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("error", method="wall.post", code=6, count=100)
        post_id = await insert_post(db, community.project_id, "Never gets through")
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            document = await wait_status(db, post_id, PostStatus.ERROR)
        assert (document["error_code"], document["attempts"]) == (6, 0)
        assert document["error"].startswith("gave up after 3 refused tries: VK error 6")
        assert len(await vk_sandbox.control.calls("wall.post")) == 3


class TestStop:
    async def test_stop_lets_the_call_in_flight_finish_and_records_it(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Stopping during a slow wall.post waits for the answer and stores the post id."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("latency", method="wall.post", seconds=1)
        post_id = await insert_post(db, community.project_id, "Slow but sure")
        async with running_trackers(db, tracker_settings, broker, fast_options()) as trackers:
            await eventually(lambda: vk_sandbox.control.calls("wall.post"), what="the call")
            await trackers[0].stop()
            document = await get_post(db, post_id)
        wall = await published(vk_sandbox, community.group_id)
        assert document is not None and len(wall) == 1
        assert (document["status"], document["vk_post_id"]) == (PostStatus.PUBLISHING.value,
                                                                wall[0]["id"])

    async def test_call_cut_short_by_stop_is_left_publishing_then_verified(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Past the stop grace the call is abandoned: the post stays publishing (never
        resent), and the next tracker finds it on the wall by content."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("latency", method="wall.post", seconds=1)
        post_id = await insert_post(db, community.project_id, "Cut short")
        async with running_trackers(db, tracker_settings, broker,
                                    fast_options(stop_grace_seconds=0.1)) as trackers:
            await eventually(lambda: vk_sandbox.control.calls("wall.post"), what="the call")
            await trackers[0].stop()
            document = await get_post(db, post_id)
        assert document is not None
        assert (document["status"], document["vk_post_id"], document["sent_text"]) == (
            PostStatus.PUBLISHING.value, None, "Cut short")
        await vk_sandbox.control.clear_faults()
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            await wait_deleted(db, post_id)
        assert len(await published(vk_sandbox, community.group_id)) == 1
        assert len(await vk_sandbox.control.calls("wall.post")) == 1


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestMetrics:
    async def test_publish_and_verify_are_counted(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox, inbox: UpdatesInbox) -> None:
        """Published, verified by way, lateness and cycle metrics move; errors count by code."""
        community = await new_community(db, vk_sandbox)
        await vk_sandbox.control.inject_fault("error", method="wall.post", code=214, count=1)
        before = {
            "published": sample("post_tracker_posts_published_total"),
            "verified": sample("post_tracker_posts_verified_total", way="id"),
            "refused": sample("post_tracker_publish_errors_total", code="214", outcome="error"),
            "lateness": sample("post_tracker_publish_lateness_seconds_count"),
            "cycles": sample("post_tracker_cycle_seconds_count", phase="schedule"),
        }
        refused = await insert_post(db, community.project_id, "Refused")
        accepted = await insert_post(db, community.project_id, "Accepted",
                                     at=now() + timedelta(milliseconds=1))
        async with running_trackers(db, tracker_settings, broker, fast_options()):
            await wait_status(db, refused, PostStatus.ERROR)
            await wait_deleted(db, accepted)
        assert sample("post_tracker_posts_published_total") - before["published"] == 1
        assert sample("post_tracker_posts_verified_total", way="id") - before["verified"] == 1
        assert sample("post_tracker_publish_errors_total", code="214",
                      outcome="error") - before["refused"] == 1
        assert sample("post_tracker_publish_lateness_seconds_count") - before["lateness"] == 2
        assert sample("post_tracker_cycle_seconds_count", phase="schedule") > before["cycles"]

    async def test_posts_per_status_are_reported(
            self, db: AsyncDatabase[Document], broker: Broker, tracker_settings: Settings,
            vk_sandbox: RunningSandbox) -> None:
        """Each cycle interval the gauge shows the collection's posts per status."""
        community = await new_community(db, vk_sandbox)
        for status in (PostStatus.ERROR, PostStatus.ERROR, PostStatus.POSSIBLE_ERROR):
            await insert_post(db, community.project_id, "failed before", status=status)
        await insert_post(db, community.project_id, "later", at=now() + timedelta(hours=1))
        await db["system_posts"].insert_one({"project_id": community.project_id,
                                             "status": "draft"})
        expected = {"pending_publication": 1, "publishing": 0, "error": 2,
                    "possible_error": 1, "other": 1}

        async def reported() -> bool:
            return {status: sample("post_tracker_system_posts", status=status)
                    for status in expected} == expected

        async with running_trackers(db, tracker_settings, broker, fast_options()):
            await eventually(reported, what=f"post_tracker_system_posts = {expected}")
