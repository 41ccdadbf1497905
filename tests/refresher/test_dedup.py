from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.refresher.dedup import EventLedger
from shared.messages import CallbackEvent
from shared.mongo import PROCESSED_EVENTS, Document


def event(event_id: str | None, correlation_id: str | None = None, project_id: str = "p"
          ) -> CallbackEvent:
    return CallbackEvent(correlation_id=correlation_id or uuid.uuid4().hex, type="wall_post_new",
                         group_id=7, event_id=event_id, project_id=project_id,
                         received_at=datetime.now(UTC))


class TestEventLedger:
    async def test_first_claim_wins_and_vk_retries_are_duplicates(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """The first message owns the event; a VK retry (new correlation id) is a duplicate."""
        ledger = EventLedger(db[PROCESSED_EVENTS])
        original = event("e1")
        assert await ledger.claim(original) is True
        assert await ledger.claim(event("e1")) is False
        assert await ledger.claim(original) is True  # a broker redelivery carries on
        stored = await db[PROCESSED_EVENTS].find_one({"_id": "p:7:e1"})
        assert stored is not None and stored["claimed_by"] == original.correlation_id

    async def test_an_event_is_claimed_once_per_project(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """Two projects of one community each get the community's event once: one
        project's copy (one callback, or its own callback server's) is no duplicate of the
        other's, and each one's VK retries are."""
        ledger = EventLedger(db[PROCESSED_EVENTS])
        shared_correlation = uuid.uuid4().hex  # one callback addressing both projects
        first = event("e1", shared_correlation, project_id="p1")
        second = event("e1", shared_correlation, project_id="p2")
        assert await ledger.claim(first) is True
        assert await ledger.claim(second) is True
        assert await ledger.claim(event("e1", project_id="p1")) is False
        assert await ledger.claim(event("e1", project_id="p2")) is False
        assert await ledger.claim(event("e1", project_id="p3")) is True  # its own server's copy

    async def test_concurrent_claims_are_batched_and_each_answered_right(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """One batch with new events, retries and redeliveries: every claim gets its own answer."""
        ledger = EventLedger(db[PROCESSED_EVENTS])
        taken = event("taken")
        assert await ledger.claim(taken)
        writes_before = ledger.claim_writes
        fresh = [event(f"new-{n}") for n in range(20)]
        twin_a, twin_b = event("twin"), event("twin")  # VK's retry arrives with the original
        claims = [*fresh, event("taken"), taken, twin_a, twin_b, event(None)]
        answers = await asyncio.gather(*(ledger.claim(claim) for claim in claims))
        assert answers[:20] == [True] * 20
        assert answers[20] is False  # VK's retry of an event taken earlier
        assert answers[21] is True  # the redelivered owner
        assert sorted(answers[22:24]) == [False, True]  # exactly one of two copies
        assert answers[24] is True  # no event_id: nothing to deduplicate
        assert ledger.claim_writes - writes_before < 20
        assert await db[PROCESSED_EVENTS].count_documents({}) == 22

    async def test_a_failed_insert_fails_every_claim_of_the_batch(
        self, db: AsyncDatabase[Document]
    ) -> None:
        """An error other than "already claimed" reaches every waiter, so all are retried."""
        await db.command({"collMod": PROCESSED_EVENTS,
                          "validator": {"claimed_by": {"$type": "int"}}})
        ledger = EventLedger(db[PROCESSED_EVENTS])
        outcomes = await asyncio.gather(*(ledger.claim(event(f"e{n}")) for n in range(10)),
                                        return_exceptions=True)
        assert all(isinstance(outcome, BulkWriteError) for outcome in outcomes)
        with pytest.raises(BulkWriteError):
            await ledger.claim(event("later"))
