"""Recognising VK's retries of an event already taken (same group_id and event_id, 3 h).

The first message to *claim* an event owns it. A broker redelivery of that same
message (same correlation id) may carry on; any other copy — VK retrying because
our ``ok`` came late — is a duplicate and does no work. A claim needs no "done"
mark: the owner's message stays unacked until its work is durable, so if it
fails it is redelivered, with the same correlation id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.messages import CallbackEvent
from shared.mongo import Document


def event_key(event: CallbackEvent) -> str | None:
    return f"{event.group_id}:{event.event_id}" if event.event_id else None


class EventLedger:
    def __init__(self, processed: AsyncCollection[Document]) -> None:
        self._processed = processed

    async def claim(self, event: CallbackEvent) -> bool:
        """True if this message should do the work; False for a duplicate."""
        key = event_key(event)
        if key is None:
            return True
        try:
            await self._processed.insert_one({
                "_id": key, "claimed_by": event.correlation_id, "seen_at": datetime.now(UTC),
            })
            return True
        except DuplicateKeyError:
            existing = await self._processed.find_one({"_id": key}, projection={"claimed_by": 1})
            return existing is not None and existing.get("claimed_by") == event.correlation_id
