from __future__ import annotations

import asyncio

import pytest

from services.callback_gateway.group_commit import MAX_IN_FLIGHT, GroupCommit
from shared.broker import PublishFailed


class RecordingPublish:
    """A publish that records each batch; ``gate`` holds every publish in flight until set."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.correlation_ids: list[str] = []
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_batch: int | None = None  # index of the batch that fails
        self._started = asyncio.Condition()

    async def started(self, count: int) -> None:
        """Wait until ``count`` batches have been handed to the publish (bounded)."""
        async with asyncio.timeout(5), self._started:
            await self._started.wait_for(lambda: len(self.batches) >= count)

    async def __call__(self, events: list[bytes], correlation_id: str) -> None:
        index = len(self.batches)
        self.batches.append(events)
        self.correlation_ids.append(correlation_id)
        async with self._started:
            self._started.notify_all()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if index == self.fail_batch:
                raise PublishFailed("not confirmed: Nack")
        finally:
            self.in_flight -= 1


def commits(publish: RecordingPublish, max_events: int = 100, max_bytes: int = 10_000
            ) -> GroupCommit:
    return GroupCommit(publish, max_events=max_events, max_bytes=max_bytes)




class TestGroupCommit:
    async def test_lone_event_is_published_at_once(self) -> None:
        """Nothing in flight: the event goes alone, with its own correlation id."""
        publish = RecordingPublish()
        await commits(publish).commit("c1", b"e1")
        assert publish.batches == [[b"e1"]]
        assert publish.correlation_ids == ["c1"]

    async def test_events_arriving_during_a_publish_share_the_next(self) -> None:
        """While two batches wait for confirms, later events queue and go out together, in order."""
        publish = RecordingPublish()
        publish.gate = asyncio.Event()
        group = commits(publish)
        first = [asyncio.create_task(group.commit(f"c{n}", f"e{n}".encode())) for n in range(2)]
        await publish.started(1)
        second = asyncio.create_task(group.commit("c2", b"e2"))
        await publish.started(2)
        rest = [asyncio.create_task(group.commit(f"c{n}", f"e{n}".encode())) for n in range(3, 8)]
        await asyncio.sleep(0.01)
        assert len(publish.batches) == MAX_IN_FLIGHT == 2  # the rest wait for a confirm
        assert not any(task.done() for task in [*first, second, *rest])
        publish.gate.set()
        await asyncio.gather(*first, second, *rest)
        assert publish.batches == [[b"e0", b"e1"], [b"e2"], [b"e3", b"e4", b"e5", b"e6", b"e7"]]
        assert publish.most_in_flight == 2

    async def test_batches_are_capped_by_count_and_bytes(self) -> None:
        """A batch holds at most ``max_events`` events and ``max_bytes`` (newlines included);
        an event larger than the cap still goes, alone."""
        publish = RecordingPublish()
        publish.gate = asyncio.Event()
        group = commits(publish, max_events=3, max_bytes=10)
        blockers = []
        for name in (b"b1", b"b2"):  # both batches in flight
            blockers.append(asyncio.create_task(group.commit("b", name)))
            await publish.started(len(blockers))
        bodies = [b"1234", b"5678", b"9", b"a", b"b", b"c", b"x" * 50, b"d"]
        waiting = [asyncio.create_task(group.commit("c", body)) for body in bodies]
        await asyncio.sleep(0)
        publish.gate.set()
        await asyncio.gather(*blockers, *waiting)
        assert publish.batches == [[b"b1"], [b"b2"], [b"1234", b"5678"], [b"9", b"a", b"b"],
                                   [b"c"], [b"x" * 50], [b"d"]]

    async def test_a_failed_batch_fails_every_event_in_it_and_no_other(self) -> None:
        """Every commit of the refused batch raises its error; the batches around it succeed."""
        publish = RecordingPublish()
        publish.gate = asyncio.Event()
        publish.fail_batch = 1
        group = commits(publish)
        early = asyncio.create_task(group.commit("a", b"a"))
        await publish.started(1)
        doomed = [asyncio.create_task(group.commit("d", f"d{n}".encode())) for n in range(4)]
        await publish.started(2)
        publish.gate.set()
        await early
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        assert publish.batches[1] == [b"d0", b"d1", b"d2", b"d3"]
        assert all(isinstance(outcome, PublishFailed) for outcome in outcomes)
        await group.commit("later", b"later")  # the next batch is published normally
        assert publish.batches[2:] == [[b"later"]]

    async def test_a_cancelled_waiter_does_not_cancel_its_batch(self) -> None:
        """A request that goes away (client disconnect) leaves the others' batch alone."""
        publish = RecordingPublish()
        publish.gate = asyncio.Event()
        group = commits(publish)
        leaving = asyncio.create_task(group.commit("l", b"l"))
        staying = asyncio.create_task(group.commit("s", b"s"))
        await publish.started(1)
        leaving.cancel()
        publish.gate.set()
        await staying
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert publish.batches == [[b"l", b"s"]]

    async def test_close_cancels_waiting_commits(self) -> None:
        """At shutdown nobody is left waiting for a confirm that will not come."""
        publish = RecordingPublish()
        publish.gate = asyncio.Event()
        group = commits(publish)
        waiting = [asyncio.create_task(group.commit("w", b"w")) for _ in range(3)]
        await publish.started(1)
        await group.close()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
