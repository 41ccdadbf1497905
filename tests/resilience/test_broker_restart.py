"""Scenario 1: RabbitMQ's application stopped and started again while callbacks keep coming."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.settings import Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.load import WallActivity
from tests.resilience.stack import (
    attempt_statuses,
    connect_communities,
    expected_tickets,
    left_behind,
    queue_depths,
    stack_settings,
    taken_tickets,
    wait_converged,
)
from tests.support.rabbit import broker_stopped
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually


@pytest.mark.timeout(600)  # stop_app and start_app take long on a broker with many queues
class TestBrokerRestartUnderLoad:
    async def test_acknowledged_callbacks_are_refreshed_and_refused_ones_land_later(
        self, mode: Mode, vk_settings: Settings, vk_sandbox: RunningSandbox,
        db: AsyncDatabase[Document], services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """A steady stream of wall changes; RabbitMQ stopped for 5 s (long: 10 s) and started.

        The gateway answers only ``ok`` or 503; every event refused with 503 is
        redelivered by VK and lands; every delivered event took its refresh ticket and
        every ticket is completed; the caches equal the walls; no queue keeps a message;
        gateway and refresher ran throughout (same PIDs).
        """
        outage = mode.pick(5.0, 10.0)
        stack = stack_settings(vk_settings)
        gateway, refresher = await services.start_many(("callback_gateway", stack),
                                                       ("refresher", stack))
        communities = await connect_communities(db, vk_sandbox, stack, logbook, mode.pick(3, 5))
        ours = {community.group_id for community in communities}

        async def deliveries() -> list[dict[str, Any]]:
            return [d for d in await vk_sandbox.control.deliveries() if d["group_id"] in ours]

        async def refused() -> bool:
            return attempt_statuses(await deliveries())[503] > 0

        activity = WallActivity(vk_sandbox, communities, interval=mode.pick(0.1, 0.05))
        async with activity.running():
            await activity.wait_for(20)
            before_outage, stopping = activity.total, time.monotonic()
            async with broker_stopped():  # returns once stop_app is done
                stopped = time.monotonic()
                await eventually(refused, timeout=outage + 10, what="a callback refused with 503")
                # The outage lasts its full length while changes keep coming.
                await asyncio.sleep(max(0.0, outage - (time.monotonic() - stopped)))
                during_outage = activity.total - before_outage
            down_seconds = time.monotonic() - stopping  # stop_app .. start_app + await_startup
            await activity.wait_for(activity.total + 20, timeout=60)
        settle_seconds = await wait_converged(db, vk_sandbox, communities, stack, timeout=120)

        settled = await deliveries()
        statuses = attempt_statuses(settled)
        assert set(statuses) <= {200, 503}, statuses
        assert all(delivery["delivered"] for delivery in settled)
        expected, taken = await expected_tickets(vk_sandbox, communities), await taken_tickets(db)
        # A broker redelivery of an event whose ack was lost may take a second ticket (one
        # more refresh, harmless); a delivered event without a ticket would be lost work.
        lost = {key: (count, taken[key]) for key, count in expected.items() if taken[key] < count}
        assert lost == {}
        assert set(taken) == set(expected)
        assert left_behind(await queue_depths(stack), "refresher") == {}
        assert gateway.alive and refresher.alive
        assert len(services.processes) == 2

        refreshes = len(refresher.events("refresh_done"))
        figures.record(
            outage_seconds=outage, broker_down_seconds=round(down_seconds, 1),
            wall_changes=activity.total, changes_during_outage=during_outage,
            events=len({d["event_id"] for d in settled}), deliveries_answered_ok=statuses[200],
            answered_503=statuses[503],
            redelivered_events=sum(1 for d in settled if len(d["attempts"]) > 1),
            refresher_tickets=sum(taken.values()), expected_tickets=sum(expected.values()),
            extra_tickets=sum((taken - expected).values()),
            duplicates_dropped=len(refresher.events("duplicate_event_dropped")),
            refreshes=refreshes, settle_seconds=round(settle_seconds, 1),
            other_5xx=sum(n for status, n in statuses.items() if status and status >= 500 and status != 503))
