"""Group commit: callbacks that arrive while a publish is unconfirmed share the next one.

The first event is published at once (a committer task starts in the next turn of
the loop, so the callbacks handled in the same turn come along). Events that arrive
while a batch waits for its confirm queue up and go out together as the next batch,
capped by count and bytes; at most :data:`MAX_IN_FLIGHT` batches are unconfirmed at
a time. So one broker confirm covers many callbacks under load, and an idle gateway
adds no latency — no timer anywhere (the same pattern as the refresher's
``batching.py``).

:meth:`GroupCommit.commit` returns only once the batch holding its event is confirmed
(the event is stored), and raises that batch's error otherwise: every request of a
failed batch answers 503, none ``ok``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.callback_gateway import metrics
from shared.tasks import cancel_and_wait

MAX_IN_FLIGHT = 2

# Publishes serialised events as one message (``correlation_id``: the first event's).
PublishBatch = Callable[[list[bytes], str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Pending:
    correlation_id: str
    body: bytes
    done: asyncio.Future[None]


class GroupCommit:
    def __init__(self, publish: PublishBatch, *, max_events: int, max_bytes: int) -> None:
        self._publish = publish
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._queued: deque[Pending] = deque()
        self._committers: set[asyncio.Task[None]] = set()

    async def commit(self, correlation_id: str, *bodies: bytes) -> None:
        """Wait until ``bodies`` (serialised events of one request) are confirmed by the
        broker; raise the publish error of a batch holding one of them if it is not."""
        loop = asyncio.get_running_loop()
        pending = [Pending(correlation_id, body, loop.create_future()) for body in bodies]
        self._queued.extend(pending)
        if len(self._committers) < MAX_IN_FLIGHT:
            self._committers.add(asyncio.create_task(self._commit_queued()))
        if len(pending) == 1:
            await pending[0].done
        else:
            await asyncio.gather(*(item.done for item in pending))

    async def _commit_queued(self) -> None:
        batch: list[Pending] = []
        try:
            while self._queued:
                batch = self._take()
                await self._commit(batch)
        finally:
            # No await since the queue was found empty: a commit() cannot slip in between
            # and count on a committer that is leaving.
            self._committers.discard(asyncio.current_task())
            for pending in batch:  # cancelled (shutdown): nobody waits for this batch
                pending.done.cancel()

    def _take(self) -> list[Pending]:
        """The next batch, oldest first: at least one event, then up to the caps."""
        batch = [self._queued.popleft()]
        size = len(batch[0].body)
        while self._queued and len(batch) < self._max_events:
            size += len(self._queued[0].body) + 1  # + the newline between events
            if size > self._max_bytes:
                break
            batch.append(self._queued.popleft())
        return batch

    async def _commit(self, batch: list[Pending]) -> None:
        metrics.BATCHES.inc()
        metrics.BATCHED_EVENTS.inc(len(batch))
        try:
            await self._publish([pending.body for pending in batch], batch[0].correlation_id)
        except Exception as exc:
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(exc)
        else:
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_result(None)

    async def close(self) -> None:
        """Stop: batches in flight are abandoned (their requests are cancelled)."""
        await cancel_and_wait(*self._committers)
        while self._queued:
            self._queued.popleft().done.cancel()
