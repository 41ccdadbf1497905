from __future__ import annotations

import asyncio

import pytest

from services.refresher.batching import Batcher


class RecordingFlush:
    """A write that records each batch; ``gate`` holds the write in flight until set."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.batches: list[tuple[str, list[int]]] = []
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self, key: str, items: list[int]) -> list[int]:
        self.batches.append((key, items))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("write failed")
        return [item * 10 for item in items]


class TestBatcher:
    async def test_single_submission_is_written_at_once(self) -> None:
        """Nothing in flight: the item is written alone, without waiting for company."""
        flush = RecordingFlush()
        batcher: Batcher[str, int, int] = Batcher(flush)
        assert await batcher.submit("k", 1) == 10
        assert flush.batches == [("k", [1])]

    async def test_submissions_during_a_write_share_the_next_one(self) -> None:
        """Items queued behind an in-flight write go together, in order, each getting its result."""
        flush = RecordingFlush()
        flush.gate = asyncio.Event()
        batcher: Batcher[str, int, int] = Batcher(flush)
        first = asyncio.create_task(batcher.submit("k", 0))
        await flush.started.wait()
        rest = [asyncio.create_task(batcher.submit("k", n)) for n in range(1, 6)]
        await asyncio.sleep(0.01)
        assert not any(task.done() for task in [first, *rest])  # all wait for their write
        flush.gate.set()
        assert await asyncio.gather(first, *rest) == [0, 10, 20, 30, 40, 50]
        assert flush.batches == [("k", [0]), ("k", [1, 2, 3, 4, 5])]
        assert batcher.writes == 2

    async def test_keys_are_written_independently(self) -> None:
        """A write in flight for one key does not hold back another key's write."""
        flush = RecordingFlush()
        flush.gate = asyncio.Event()
        batcher: Batcher[str, int, int] = Batcher(flush)
        blocked = asyncio.create_task(batcher.submit("a", 1))
        await flush.started.wait()
        flush.gate.set()
        assert list(await asyncio.gather(blocked, batcher.submit("b", 2))) == [10, 20]
        assert sorted(key for key, _ in flush.batches) == ["a", "b"]

    async def test_a_failed_write_fails_every_item_of_it(self) -> None:
        """Every waiter of the failed batch gets the error; later submissions write anew."""
        flush = RecordingFlush(fail=True)
        flush.gate = asyncio.Event()
        batcher: Batcher[str, int, int] = Batcher(flush)
        first = asyncio.create_task(batcher.submit("k", 0))
        await flush.started.wait()
        rest = [asyncio.create_task(batcher.submit("k", n)) for n in range(1, 4)]
        await asyncio.sleep(0)
        flush.gate.set()
        outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
        assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
        flush.fail = False
        assert await batcher.submit("k", 7) == 70

    async def test_a_cancelled_waiter_does_not_cancel_the_write(self) -> None:
        """One caller giving up leaves the shared write, and the others' results, intact."""
        flush = RecordingFlush()
        flush.gate = asyncio.Event()
        batcher: Batcher[str, int, int] = Batcher(flush)
        first = asyncio.create_task(batcher.submit("k", 1))
        second = asyncio.create_task(batcher.submit("k", 2))
        await flush.started.wait()
        first.cancel()
        flush.gate.set()
        assert await second == 20
        with pytest.raises(asyncio.CancelledError):
            await first
        assert flush.batches == [("k", [1, 2])]
