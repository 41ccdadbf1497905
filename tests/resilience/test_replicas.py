"""Scenario 4: every service replicated (3 trackers, 2 refreshers, 2 notifiers, a gateway)
with system posts and callbacks flowing: no double publication, no lost update.

"No lost update, exactly once", precisely (see :mod:`tests.resilience.clients`):
every change the services announce — each refresh (``project_update_announced`` of a
refresher) and each system-post transition (``post_claimed``, ``post_published``,
``post_verified``, ``post_retry_scheduled``, ``post_failed``, ``post_rejected``,
``post_possible_error`` of a tracker) — is
one entry of the update log, the log has no hole, a cursor chain alternating between
the two notifiers reports each entry in exactly one poll, and an SSE client on each
notifier receives each entry exactly once, in order.
"""

from __future__ import annotations

import time
from collections import Counter

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.settings import Settings
from tests.resilience.clients import (
    CursorChain,
    SseFollower,
    assert_log_has_no_hole,
    update_log,
)
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.load import SystemPostFeed, WallActivity
from tests.resilience.stack import (
    attempt_statuses,
    connect_communities,
    left_behind,
    notifier_url,
    queue_depths,
    stack_settings,
    undelivered,
    wait_converged,
    wall_texts,
)
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.mongod import free_port

TRACKER_CHANGES = ("post_claimed", "post_published", "post_verified", "post_retry_scheduled",
                   "post_failed", "post_rejected", "post_possible_error")


@pytest.mark.timeout(300)
class TestReplicasUnderLoad:
    async def test_no_double_publication_and_every_change_reaches_every_client_once(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """20 s (long: 2 min) of system posts (2/s) and wall changes (4/s) over 4 projects,
        with every service replicated; then everything settles and is checked."""
        duration = mode.pick(20.0, 120.0)
        stack = stack_settings(vk_settings, tracker_interval_seconds=2.0,
                               tracker_verify_timeout_seconds=60.0)
        second_notifier = stack.model_copy(update={"notifier_port": free_port()})
        # Four processes spend each project's token here; VK's 3/s per token would turn
        # this scenario into one about error 6 (scenario 9 covers that).
        await vk_sandbox.control.set_config(user_requests_per_second=20)
        await services.start_many(
            ("callback_gateway", stack), ("refresher", stack), ("refresher", stack),
            ("post_tracker", stack), ("post_tracker", stack), ("post_tracker", stack),
            ("update_notifier", stack), ("update_notifier", second_notifier))
        communities = await connect_communities(db, vk_sandbox, stack, logbook, 4)
        notifiers = [notifier_url(stack), notifier_url(second_notifier)]
        activity = WallActivity(vk_sandbox, communities, interval=0.25)
        feed = SystemPostFeed(db, communities, interval=0.5)

        async with aiohttp.ClientSession() as http:
            chain = CursorChain(http, notifiers)
            followers = [SseFollower(http, url) for url in notifiers]
            async with followers[0].following(), followers[1].following():
                async with chain.polling(0.1), activity.running(), feed.running():
                    started = time.monotonic()

                    async def long_enough() -> bool:
                        return time.monotonic() - started >= duration

                    await eventually(long_enough, timeout=duration + 5, interval=0.5,
                                     what="the load to run its course")

                async def posts_settled() -> bool:
                    return await feed.unsettled() == 0

                await eventually(posts_settled, timeout=90, interval=0.5,
                                 what="every system post verified")
                await wait_converged(db, vk_sandbox, communities, stack, timeout=90)

                def announced() -> int:
                    return (len(services.events("refresher", "project_update_announced"))
                            + len(services.events("post_tracker", *TRACKER_CHANGES)))

                async def all_logged() -> bool:
                    entries = await update_log(db)
                    return len(entries) >= announced()

                await eventually(all_logged, timeout=30, what="every announced change logged")
                entries = await update_log(db)
                await chain.catch_up(entries[-1].seq, timeout=20)
                for follower in followers:
                    await follower.catch_up(entries[-1].seq, timeout=20)

        # No double publication: every post's text is on its wall exactly once.
        texts_on_walls: Counter[str] = Counter()
        for community in communities:
            texts_on_walls += await wall_texts(vk_sandbox, community.group_id)
        published = {text: texts_on_walls[text] for _, text in feed.posts.values()}
        assert published == dict.fromkeys(published, 1)
        assert not services.events("post_tracker", "post_possible_error", "post_failed",
                                   "announce_failed")

        # No lost update: the log holds exactly the announced changes, once each.
        assert_log_has_no_hole(entries)
        reasons = Counter(entry.reason for entry in entries)
        refresher_announced = len(services.events("refresher", "project_update_announced"))
        tracker_changes = len(services.events("post_tracker", *TRACKER_CHANGES))
        assert reasons == Counter({"refresh": refresher_announced, "system_post": tracker_changes})
        chain_entries = chain.check(entries)
        stream_entries = [follower.check(entries) for follower in followers]

        assert left_behind(await queue_depths(stack), "refresher", "notifier") == {}
        assert await undelivered(vk_sandbox, (c.group_id for c in communities)) == []
        assert all(process.alive for process in services.processes)
        deliveries = await vk_sandbox.control.deliveries()
        figures.record(
            seconds=duration, processes=len(services.processes), system_posts=len(feed.posts),
            published=sum(published.values()), double_publications=0,
            wall_post_calls=len(await vk_sandbox.control.calls("wall.post")),
            wall_changes=activity.total, callbacks=len(deliveries),
            callback_statuses=dict(attempt_statuses(deliveries)),
            refreshes_announced=refresher_announced, post_changes_announced=tracker_changes,
            log_entries=len(entries), chain_polls=len(chain.polls), chain_entries=chain_entries,
            stream_entries=stream_entries,
            duplicates_dropped=len(services.events("refresher", "duplicate_event_dropped")),
            notifier_duplicates=len(services.events("update_notifier", "project_update_duplicate")))
