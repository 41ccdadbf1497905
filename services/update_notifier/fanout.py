"""In-memory fan-out of ready-made frames to every connected stream of this process.

One publisher (the log tailer, and the keepalive ticker) and thousands of
subscribers. Publishing never waits: each subscriber has a bounded queue, and a
subscriber whose queue is full is cut off (``on_overflow``, e.g. aborting its
connection) so that it reconnects and replays from the log instead of holding
everyone back. Frames are shared, immutable bytes; a subscriber costs one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from services.update_notifier.metrics import STREAM_OVERFLOWS

DEFAULT_BOUND = 256


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes to write to a stream as they are; ``seq`` is set for update events."""

    data: bytes
    seq: int | None = None


def _nothing() -> None:
    return None


class Subscription:
    """One subscriber's bounded queue; ``None`` from :meth:`next` means "end the stream"."""

    __slots__ = ("_on_overflow", "_queue", "ended")

    def __init__(self, bound: int, on_overflow: Callable[[], None]) -> None:
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue(bound)
        self._on_overflow = on_overflow
        self.ended = False

    async def next(self) -> Frame | None:
        """The next frame, or None once the subscription was cut off or the fan-out closed."""
        if self.ended:
            return None
        return await self._queue.get()

    def _offer(self, frame: Frame) -> bool:
        """Queue without waiting; False (and cut off) if the subscriber is too far behind."""
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.ended = True
            self._on_overflow()
            return False
        return True

    def _end(self) -> None:
        self.ended = True
        # Wakes a subscriber waiting on an empty queue; one with a full queue is not
        # waiting, and sees ``ended`` at its next call.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)


class Fanout:
    """Publish frames to all current subscriptions; never blocks the publisher."""

    def __init__(self, bound: int = DEFAULT_BOUND) -> None:
        if bound < 1:
            raise ValueError("a subscription queue holds at least one frame")
        self.bound = bound
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, on_overflow: Callable[[], None] = _nothing) -> Subscription:
        subscription = Subscription(self.bound, on_overflow)
        if self.closed:
            subscription._end()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, frame: Frame) -> None:
        """Offer ``frame`` to every subscription; drop the ones that are full."""
        behind = [subscription for subscription in self._subscriptions
                  if not subscription._offer(frame)]
        for subscription in behind:
            self._subscriptions.discard(subscription)
        if behind:
            STREAM_OVERFLOWS.inc(len(behind))

    def close(self) -> None:
        """End every subscription (server shutting down); later ones end at once."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription._end()
        self._subscriptions.clear()


async def keepalive(fanout: Fanout, frame: Frame, interval: float) -> None:
    """Publish ``frame`` every ``interval`` seconds, until cancelled.

    One timer per process, not one per stream: a stream that is gone is noticed
    when writing the keepalive fails.
    """
    while True:
        await asyncio.sleep(interval)
        fanout.publish(frame)
