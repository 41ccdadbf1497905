"""The one change-stream follower: what it hands its consumer, and that stopping it never hangs.

Stopping is checked against a real mongod with the follower parked in a ``getMore``
the server holds open (seen in ``$currentOp``), and right after starts, where Python
3.11 can lose a cancellation (see :mod:`shared.change_stream`). The bound on each stop
is generous: the assertion is that it returns at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.change_stream import follow_changes, stop_following
from shared.mongo import Document
from tests.support.change_streams import awaiting_get_more
from tests.support.waiting import eventually

STOP_BOUND_SECONDS = 60.0
# A getMore the server would hold open far longer than the stop may take.
LONG_AWAIT_MS = 600_000


class Recorder:
    """A consumer that catches up with a read, and remembers what it was given."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        self.opened_count = 0
        self.changes: list[Document] = []
        self.closed_count = 0
        self.errors: list[Exception] = []

    async def opened(self) -> None:
        await self.collection.count_documents({})
        self.opened_count += 1

    def changed(self, change: Document) -> None:
        self.changes.append(change)

    def closed(self) -> None:
        self.closed_count += 1

    async def lost(self, error: Exception, failures: int) -> None:
        self.errors.append(error)
        await asyncio.sleep(0.05)


def opener(collection: AsyncCollection[Document]) -> Any:
    async def open_stream() -> AsyncChangeStream[Document]:
        return await collection.watch(max_await_time_ms=LONG_AWAIT_MS)

    return open_stream


async def stopped(task: asyncio.Task[None]) -> bool:
    """Stop the follower; whether it ended within the (generous) bound."""
    stop = asyncio.create_task(stop_following(task))
    done, _ = await asyncio.wait({stop}, timeout=STOP_BOUND_SECONDS)
    return stop in done and task.done()


class TestFollowChanges:
    async def test_hands_over_changes_in_order_after_opening(
            self, db: AsyncDatabase[Document]) -> None:
        recorder = Recorder(db["followed"])
        task = asyncio.create_task(follow_changes(opener(db["followed"]), recorder))

        async def opened() -> bool:
            return recorder.opened_count == 1

        async def three_changes() -> bool:
            return len(recorder.changes) == 3

        try:
            await eventually(opened, what="the stream open")
            await db["followed"].insert_many([{"n": n} for n in range(3)])
            await eventually(three_changes, what="three changes")
            assert [change["fullDocument"]["n"] for change in recorder.changes] == [0, 1, 2]
        finally:
            assert await stopped(task)
        assert task.cancelled() and recorder.closed_count == 1 and recorder.errors == []

    async def test_stopping_never_waits_for_an_idle_get_more(
            self, db: AsyncDatabase[Document]) -> None:
        """Parked in a getMore the server would hold for 10 minutes: the stop returns."""
        recorder = Recorder(db["idle"])
        task = asyncio.create_task(follow_changes(opener(db["idle"]), recorder))

        async def parked() -> bool:
            return await awaiting_get_more(db, "idle")

        await eventually(parked, what="the follower's getMore on the server")
        assert await stopped(task)
        assert task.cancelled() and recorder.closed_count == 1
        assert await db["idle"].count_documents({}) == 0  # the client still works

    async def test_stopping_right_after_starting_never_hangs(
            self, db: AsyncDatabase[Document]) -> None:
        """Stops at every early point (opening, catching up, the first getMore): all end.
        A single cancellation can be lost here on Python 3.11; the stop repeats it."""
        for steps in range(40):
            recorder = Recorder(db["early"])
            task = asyncio.create_task(follow_changes(opener(db["early"]), recorder))
            for _ in range(steps):
                await asyncio.sleep(0)
            assert await stopped(task), f"stopped after {steps} steps"
