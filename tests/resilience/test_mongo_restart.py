"""Scenario 5: MongoDB killed (``kill -9``) and restarted on the same data dir and port
while all four services run; they reconnect by themselves and no acknowledged work
is lost.

The test runs its own mongod (``tools.mongod``) in a temporary directory, so killing
it touches nobody else.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from shared.settings import Settings
from tests.resilience.clients import (
    CursorChain,
    SseFollower,
    assert_log_has_no_hole,
    wait_all_logged,
)
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.load import SystemPostFeed, WallActivity
from tests.resilience.stack import (
    attempt_statuses,
    connect_communities,
    database,
    left_behind,
    notifier_url,
    queue_depths,
    stack_settings,
    start_all,
    wait_converged,
    wall_texts,
)
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.mongod import free_port, mongo_url, start_mongod, stop_mongod


@dataclass
class PrivateMongod:
    """A mongod of this test's own: ``kill -9`` and restart on the same dir and port."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return mongo_url(self.port)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL, by the PID this test started
        self.process.wait()

    def restart(self) -> None:
        """Start again on the same data dir and port; returns once it is primary."""
        self.process = start_mongod(self.data_dir, self.port)


@pytest.fixture
def private_mongod() -> Iterator[PrivateMongod]:
    with tempfile.TemporaryDirectory(prefix="resilience-mongo-") as directory:
        port = free_port()
        data_dir = Path(directory) / "data"
        mongod = PrivateMongod(data_dir, port, start_mongod(data_dir, port))
        try:
            yield mongod
        finally:
            stop_mongod(mongod.process)


@pytest.mark.timeout(300)
class TestMongoRestart:
    async def test_services_reconnect_and_no_acknowledged_work_is_lost(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        private_mongod: PrivateMongod, services: ServiceGroup, logbook: LogBook,
        figures: Figures,
    ) -> None:
        """Callbacks and system posts flow; mongod is killed for 5 s (long: 15 s) and
        restarted. The same four processes (same PIDs) carry on: every callback VK sent
        is answered ok in the end and refreshed, caches equal the walls, every system
        post inserted before the crash is published once and verified, the update log
        has no hole and both clients saw every entry once; nothing is dead-lettered."""
        outage = mode.pick(5.0, 15.0)
        stack = stack_settings(vk_settings.model_copy(update={"mongo_url": private_mongod.url}),
                               tracker_verify_timeout_seconds=60.0)
        async with database(stack) as db:
            pids = await start_all(services, stack)
            communities = await connect_communities(db, vk_sandbox, stack, logbook, 2)
            activity = WallActivity(vk_sandbox, communities, interval=0.2)
            feed = SystemPostFeed(db, communities, interval=0.5, spread=outage)
            base = notifier_url(stack)
            async with aiohttp.ClientSession() as http:
                chain = CursorChain(http, [base])
                follower = SseFollower(http, base)
                async with follower.following():
                    async with chain.polling(0.1), activity.running():
                        async with feed.running():  # some of these fall due during the outage
                            await activity.wait_for(10)
                        before_crash = len(feed.posts)
                        private_mongod.kill()
                        killed, changes_before = time.monotonic(), activity.total
                        await asyncio.sleep(outage)  # MongoDB is down for this long
                        private_mongod.restart()
                        changes_during = activity.total - changes_before
                        down = time.monotonic() - killed
                        async with feed.running():
                            await activity.wait_for(activity.total + 10, timeout=60)
                    settle = await wait_converged(db, vk_sandbox, communities, stack, timeout=120)

                    async def posts_settled() -> bool:
                        return await feed.unsettled() == 0

                    await eventually(posts_settled, timeout=90, interval=0.5,
                                     what="every system post settled")

                    entries = await wait_all_logged(db, services)
                    await chain.catch_up(entries[-1].seq, timeout=30)
                    await follower.catch_up(entries[-1].seq, timeout=30)

            on_walls: Counter[str] = Counter()
            for community in communities:
                on_walls += await wall_texts(vk_sandbox, community.group_id)
            published = {text: on_walls[text] for _, text in feed.posts.values()}
            assert published == dict.fromkeys(published, 1)  # every post, and only once
            assert_log_has_no_hole(entries)
            chain_entries = chain.check(entries)
            stream_entries = follower.check(entries)
            assert left_behind(await queue_depths(stack), "refresher", "notifier") == {}
            assert all(process.alive for process in services.processes)
            assert {process.pid for process in services.processes} == pids
            deliveries = await vk_sandbox.control.deliveries()
            figures.record(
                outage_seconds=outage, mongod_down_seconds=round(down, 1),
                wall_changes=activity.total, changes_during_outage=changes_during,
                callbacks=len(deliveries), callback_statuses=dict(attempt_statuses(deliveries)),
                system_posts=len(feed.posts), inserted_before_crash=before_crash,
                published=sum(published.values()), double_publications=0,
                log_entries=len(entries), chain_entries=chain_entries,
                stream_entries=stream_entries, settle_seconds=round(settle, 1),
                message_retries=sum(len(process.events("message_failed_will_retry"))
                                    for process in services.processes))
