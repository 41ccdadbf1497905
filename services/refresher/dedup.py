"""Recognising VK's retries of an event already taken (same project, group_id and
event_id, 3 h). Per project: a community's event reaches each of its projects (through
each one's callback server, see ``services/callback_gateway/addressing.py``), and one
project's copy is no duplicate of another's.

The first message to *claim* an event owns it. A broker redelivery of that same
message (same correlation id) may carry on; any other copy — VK retrying because
our ``ok`` came late — is a duplicate and does no work. A claim needs no "done"
mark: the owner's message stays unacked until its work is durable, so if it
fails it is redelivered, with the same correlation id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.refresher.batching import Batcher
from shared.messages import CallbackEvent
from shared.mongo import Document

DUPLICATE_KEY = 11000  # MongoDB's error code


def event_key(event: CallbackEvent) -> str | None:
    return f"{event.project_id}:{event.group_id}:{event.event_id}" if event.event_id else None


class EventLedger:
    """Claims are written in batches: those arriving while one insert is in flight go
    together into the next ``insert_many`` (:mod:`services.refresher.batching`)."""

    def __init__(self, processed: AsyncCollection[Document]) -> None:
        self._processed = processed
        self._claims: Batcher[None, CallbackEvent, bool] = Batcher(self._claim_batch)

    @property
    def claim_writes(self) -> int:
        """How many claim inserts this process made (fewer than claims under load)."""
        return self._claims.writes

    async def claim(self, event: CallbackEvent) -> bool:
        """True if this message should do the work; False for a duplicate."""
        if event_key(event) is None:
            return True
        return await self._claims.submit(None, event)

    async def _claim_batch(self, _: None, events: list[CallbackEvent]) -> list[bool]:
        seen_at = datetime.now(UTC)
        documents = [{"_id": event_key(event), "claimed_by": event.correlation_id,
                      "seen_at": seen_at} for event in events]
        try:
            await self._processed.insert_many(documents, ordered=False)
            return [True] * len(events)
        except BulkWriteError as exc:
            # Unordered: every other document was inserted. Only "already claimed"
            # errors are an answer; anything else fails the whole batch (retried).
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                    error["code"] != DUPLICATE_KEY for error in errors):
                raise
            taken = {int(error["index"]) for error in errors}
        # Taken before: a redelivery of the claiming message (same correlation id) may
        # carry on, any other copy is a duplicate.
        owners = {document["_id"]: document.get("claimed_by") async for document in
                  self._processed.find({"_id": {"$in": [documents[i]["_id"] for i in taken]}},
                                       projection={"claimed_by": 1})}
        return [index not in taken or owners.get(document["_id"]) == event.correlation_id
                for index, (document, event) in enumerate(zip(documents, events, strict=True))]
