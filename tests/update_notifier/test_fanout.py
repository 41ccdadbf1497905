from __future__ import annotations

import asyncio

from services.update_notifier.fanout import Fanout, Frame, keepalive
from tests.support.metrics import MetricsSince

OVERFLOWS = "notifier_stream_overflows_total"


def frame(seq: int) -> Frame:
    return Frame(f"{seq}".encode(), seq)


class TestFanout:
    async def test_every_subscriber_gets_every_frame_in_order(self) -> None:
        """Publishing offers the same frames, in order, to all subscriptions."""
        fanout = Fanout(bound=8)
        first, second = fanout.subscribe(), fanout.subscribe()
        for seq in (1, 2, 3):
            fanout.publish(frame(seq))
        for subscription in (first, second):
            assert [await subscription.next() for _ in range(3)] == [frame(1), frame(2), frame(3)]

    async def test_a_subscriber_too_far_behind_is_cut_off_without_blocking_others(self) -> None:
        """A full queue ends that subscription (and calls its hook); the others go on."""
        fanout, since = Fanout(bound=2), MetricsSince()
        cut_off: list[str] = []
        slow = fanout.subscribe(lambda: cut_off.append("slow"))
        fast = fanout.subscribe(lambda: cut_off.append("fast"))
        for seq in (1, 2):
            fanout.publish(frame(seq))
        assert await fast.next() == frame(1)
        assert await fast.next() == frame(2)
        fanout.publish(frame(3))  # slow still holds 1 and 2
        assert cut_off == ["slow"]
        assert since(OVERFLOWS) == 1
        assert fanout.subscriber_count == 1
        assert await slow.next() is None  # queued frames are not worth sending any more
        assert await fast.next() == frame(3)

    async def test_unsubscribed_gets_nothing_more(self) -> None:
        """A stream that ended leaves the fan-out."""
        fanout, since = Fanout(bound=2), MetricsSince()
        gone = fanout.subscribe()
        fanout.unsubscribe(gone)
        for seq in (1, 2, 3):
            fanout.publish(frame(seq))
        assert fanout.subscriber_count == 0
        assert since(OVERFLOWS) == 0

    async def test_close_ends_waiting_and_later_subscriptions(self) -> None:
        """Shutdown wakes every waiting stream with the end marker; new ones end at once."""
        fanout = Fanout(bound=2)
        waiting = fanout.subscribe()
        pending = asyncio.create_task(waiting.next())
        await asyncio.sleep(0)  # let it wait on the empty queue
        fanout.close()
        assert await asyncio.wait_for(pending, 1) is None
        assert await fanout.subscribe().next() is None

    async def test_close_ends_a_subscription_with_a_full_queue(self) -> None:
        """A stream busy writing (queue full) sees the end at its next read."""
        fanout = Fanout(bound=1)
        busy = fanout.subscribe()
        fanout.publish(frame(1))
        fanout.close()
        assert await busy.next() is None


class TestKeepalive:
    async def test_publishes_the_frame_every_interval(self) -> None:
        """One ticker per process feeds keepalives to every stream."""
        fanout = Fanout(bound=8)
        subscription = fanout.subscribe()
        beat = Frame(b": keepalive\n\n")
        ticker = asyncio.create_task(keepalive(fanout, beat, 0.01))
        try:
            assert await asyncio.wait_for(subscription.next(), 2) == beat
            assert await asyncio.wait_for(subscription.next(), 2) == beat
        finally:
            ticker.cancel()
