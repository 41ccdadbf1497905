"""Calling back on changes to a collection: a MongoDB change stream, polling as fallback.

``wake`` is called for every change the pipeline lets through, once whenever the
stream (re)opens (for whatever happened while it was closed), and every
``poll_seconds`` while it cannot be opened (tried again after ``retry_seconds``). So
``wake`` means "something may have changed": callers re-read, and a missed change costs
at most a poll, never a wrong answer for long. The stream is followed by
:func:`shared.change_stream.follow_changes` (stop :meth:`ChangeWakeup.run` by cancelling it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection

from shared.change_stream import ChangeStreamEnded, follow_changes
from shared.mongo import Document

log = structlog.get_logger(__name__)


class ChangeWakeup:
    def __init__(self, collection: AsyncCollection[Document], wake: Callable[[], None], *,
                 poll_seconds: float, retry_seconds: float,
                 pipeline: Sequence[dict[str, Any]]) -> None:
        self._collection = collection
        self._wake = wake
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._pipeline = list(pipeline)
        self.watching = False

    async def run(self) -> None:
        """Until cancelled."""
        await follow_changes(self._open, self)

    async def _open(self) -> AsyncChangeStream[Document]:
        return await self._collection.watch(self._pipeline)

    async def opened(self) -> None:
        self.watching = True
        log.info("change_stream_open", collection=self._collection.name)
        self._wake()

    def changed(self, change: Document) -> None:
        self._wake()

    def closed(self) -> None:
        self.watching = False

    async def lost(self, error: Exception, failures: int) -> None:
        if isinstance(error, ChangeStreamEnded):
            # Invalidated (the collection was dropped or renamed): open another, without
            # spinning should that keep happening.
            log.info("change_stream_closed", collection=self._collection.name)
            await asyncio.sleep(min(self._poll_seconds, 1.0))
            return
        log.warning("change_stream_unavailable", collection=self._collection.name,
                    error=f"{type(error).__name__}: {error}", poll_seconds=self._poll_seconds,
                    retry_in_seconds=self._retry_seconds)
        await self._poll(self._retry_seconds)

    async def _poll(self, duration: float) -> None:
        deadline = time.monotonic() + duration
        while True:
            self._wake()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self._poll_seconds, remaining))
