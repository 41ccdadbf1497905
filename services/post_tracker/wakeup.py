"""Waking the tracker early: a MongoDB change stream on ``system_posts``, polling as fallback.

The tracker sleeps until its next due post; this wakes it when posts are created or
moved (an insert or replace, a new ``publication_date``, a status set back to
``pending_publication``). Its own claims and transitions do not wake it.

If the stream cannot be opened or breaks, the tracker is woken every
``poll_seconds`` instead, and the stream is tried again after ``retry_seconds``.
Every (re)opening wakes the tracker once, for whatever happened while it was closed.
Waking is only ever early: the tracker re-reads the database, so a missed event costs
at most the poll (or the safety-net cycle), never a post.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection

from shared.documents import Status
from shared.mongo import Document

log = structlog.get_logger(__name__)

WAKE_PIPELINE: tuple[dict[str, Any], ...] = ({"$match": {"$or": [
    {"operationType": {"$in": ["insert", "replace"]}},
    {"operationType": "update",
     "updateDescription.updatedFields.status": Status.PENDING.value},
    {"operationType": "update",
     "updateDescription.updatedFields.publication_date": {"$exists": True}},
]}},)


class ChangeWakeup:
    def __init__(self, collection: AsyncCollection[Document], wake: Callable[[], None], *,
                 poll_seconds: float, retry_seconds: float,
                 pipeline: Sequence[dict[str, Any]] = WAKE_PIPELINE) -> None:
        self._collection = collection
        self._wake = wake
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._pipeline = list(pipeline)
        self.watching = False

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            try:
                async with await self._collection.watch(self._pipeline) as stream:
                    self.watching = True
                    log.info("change_stream_open")
                    self._wake()
                    async for _change in stream:
                        self._wake()
                # Invalidated (the collection was dropped or renamed): open another,
                # without spinning should that keep happening.
                log.info("change_stream_closed")
                self.watching = False
                await asyncio.sleep(min(self._poll_seconds, 1.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.watching = False
                log.warning("change_stream_unavailable", error=f"{type(exc).__name__}: {exc}",
                            poll_seconds=self._poll_seconds,
                            retry_in_seconds=self._retry_seconds)
                await self._poll(self._retry_seconds)
            finally:
                self.watching = False

    async def _poll(self, duration: float) -> None:
        deadline = time.monotonic() + duration
        while True:
            self._wake()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self._poll_seconds, remaining))
