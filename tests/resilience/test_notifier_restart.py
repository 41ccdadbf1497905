"""Scenario 6: the notifier stopped (SIGTERM) and killed (SIGKILL) and started again while
updates keep coming; a cursor client and an SSE client lose nothing across it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.messages import ProjectUpdated
from shared.mongo import PROJECT_UPDATES, Document
from shared.settings import Settings
from tests.resilience.clients import (
    CursorChain,
    SseFollower,
    assert_log_has_no_hole,
    update_log,
)
from tests.resilience.harness import ServiceGroup
from tests.resilience.stack import left_behind, notifier_url, queue_depths, stack_settings
from tests.support.background import in_background
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually


class UpdateStream:
    """Publishes ``ProjectUpdated`` for a new project id every ``interval`` (as refreshers
    and trackers would), each confirmed by the broker before it counts as sent."""

    def __init__(self, broker: Broker, interval: float) -> None:
        self._broker = broker
        self._interval = interval
        self.sent: list[str] = []

    async def _run(self) -> None:
        while True:
            project_id = f"project-{len(self.sent):05d}"
            await self._broker.publish_update(ProjectUpdated(project_id=project_id,
                                                             reason="resilience"))
            self.sent.append(project_id)
            await asyncio.sleep(self._interval)

    async def wait_for(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.sent) >= count
        await eventually(enough, timeout=30, what=f"{count} updates published")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[UpdateStream]:
        async with in_background(self._run()):
            yield self


class TestNotifierRestart:
    async def test_cursor_and_stream_clients_see_every_update_once_across_restarts(
        self, mode: Mode, settings: Settings, db: AsyncDatabase[Document], broker: Broker,
        services: ServiceGroup, figures: Figures,
    ) -> None:
        """Updates flow at ~40/s; the notifier is stopped with SIGTERM and killed with
        SIGKILL in turn (2 restarts; long: 10) and started again on the same port. Every
        update is logged exactly once, the log has no hole, the cursor chain tiles it and
        the SSE client (resuming with Last-Event-ID) receives every entry once, in order."""
        restarts = mode.pick(2, 10)
        stack = stack_settings(settings)
        base = notifier_url(stack)
        notifier = await services.start("update_notifier", stack)
        updates = UpdateStream(broker, interval=0.025)
        async with aiohttp.ClientSession() as http:
            chain = CursorChain(http, [base])
            follower = SseFollower(http, base)
            ways: Counter[str] = Counter()
            async with follower.following():
                async with chain.polling(0.05), updates.running():
                    for restart in range(restarts):
                        await updates.wait_for(len(updates.sent) + 30)
                        if restart % 2:
                            await notifier.kill()
                            ways["sigkill"] += 1
                        else:
                            assert await notifier.stop() == 0
                            ways["sigterm"] += 1
                        await updates.wait_for(len(updates.sent) + 20)  # sent while it is down
                        notifier = await services.start("update_notifier", stack)
                    await updates.wait_for(len(updates.sent) + 30)

                async def all_logged() -> bool:
                    return await db[PROJECT_UPDATES].count_documents({}) >= len(updates.sent)

                await eventually(all_logged, timeout=30, what="every update in the log")
                entries = await update_log(db)
                await chain.catch_up(entries[-1].seq, timeout=20)
                await follower.catch_up(entries[-1].seq, timeout=20)

        assert_log_has_no_hole(entries)
        assert [entry.project_id for entry in entries] == updates.sent  # once each, in order
        seen_by_chain = chain.check(entries)
        seen_by_stream = follower.check(entries)
        assert left_behind(await queue_depths(stack), "notifier") == {}
        recorded = services.events("update_notifier", "project_update_recorded")
        duplicates = services.events("update_notifier", "project_update_duplicate")
        figures.record(restarts=dict(ways), updates_sent=len(updates.sent), logged=len(entries),
                       recorded=len(recorded), redelivered_duplicates=len(duplicates),
                       chain_polls=len(chain.polls), chain_failed_polls=chain.failures,
                       chain_entries=seen_by_chain, stream_entries=seen_by_stream,
                       stream_connections=follower.connections)
