"""Group commit: concurrent submissions for one key share a write.

The first submission for a key is written at once; every submission for that key
that arrives while the write is in flight waits and goes into the *next* write,
together with the others that came meanwhile. So at most one write per key is in
flight, and under load each write carries all that queued up behind the previous
one — no timer, no added latency when idle.

Each ``await submit(...)`` returns only once the write covering its item has
returned (so a message acked after it is acked only once its work is durable),
with that item's result; if the write fails, every item of it gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

# Writes the items (in submission order) under one key; returns one result per item.
Flush = Callable[[K, list[T]], Awaitable[Sequence[R]]]


class Batcher(Generic[K, T, R]):
    def __init__(self, flush: Flush[K, T, R]) -> None:
        self._flush = flush
        self._queued: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._flushing: dict[K, asyncio.Task[None]] = {}
        self.writes = 0  # flushes started, for tests and curiosity

    async def submit(self, key: K, item: T) -> R:
        """Queue ``item`` under ``key`` and wait until a write covering it has returned."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(key, []).append((item, done))
        if key not in self._flushing:
            # A task of its own, so a waiter that is cancelled cannot cancel the others' write.
            self._flushing[key] = asyncio.create_task(self._flush_queued(key))
        return await done

    async def _flush_queued(self, key: K) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while batch := self._queued.pop(key, []):
                await self._write(key, batch)
        finally:
            # Reached without an await after finding the queue empty, so no submission
            # can slip in between and wait for a flusher that has already stopped.
            del self._flushing[key]
            # Cancelled (shutdown): nobody may wait for a write that will not come.
            for _, done in batch + self._queued.pop(key, []):
                done.cancel()

    async def _write(self, key: K, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.writes += 1
        try:
            results = await self._flush(key, [item for item, _ in batch])
            settled = [(done, result) for (_, done), result in zip(batch, results, strict=True)]
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
        else:
            for done, result in settled:
                if not done.done():
                    done.set_result(result)
