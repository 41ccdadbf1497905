"""Leases in MongoDB documents, kept alive by a heartbeat: how a refresh key
(``refresh_state``) and a tracker project (``post_tracker_leases``) are held by one
process at a time.

A lease is three fields of its document, under a prefix (``lease_owner``, … in
``refresh_state``; ``owner``, … in ``post_tracker_leases``): its holder (``owner``, the
process), the ``token`` of this taking, and ``until``. MongoDB's clock (``$$NOW``)
decides expiry, so replicas' clocks need not agree. Anyone may take a lease that is free
or expired; its owner takes one still marked as its own at once (stale: a release that
failed while MongoDB had no primary), since an owner holds a document only once at a time.

A lease is short (``REFRESHER_LEASE_SECONDS`` / ``TRACKER_LEASE_SECONDS``, 10 s by
default) and its holder renews it every third of it while it lives, so:

* a holder that dies (``kill -9``, a lost host) is replaced within one lease;
* a live holder is never robbed, however long its work takes: renewal proves life;
* a renewal that fails on a transient error (no MongoDB primary during a failover) is
  tried again shortly, not after another third of the lease; the holder gives the
  lease up only when a renewal finds it taken by someone else.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import Document

log = structlog.get_logger(__name__)

RENEWALS_PER_LEASE = 3
# After a failed renewal: try again this soon (a renewal during a failover already
# waits for a primary up to the driver's server selection timeout).
RENEW_RETRY_SECONDS = 0.5

# Extends the lease; False when it was found taken (expired and taken by another holder).
Renew = Callable[[], Awaitable[bool]]


def process_owner() -> str:
    """This process as a lease owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Lease:
    """One taking of the lease of a document."""

    document_id: Any
    token: str  # identifies this taking: a renewal or release with another token fails


class MongoLeases:
    """The leases of one collection's documents, taken by ``owner`` for ``lease_seconds``."""

    def __init__(self, collection: AsyncCollection[Document], *, owner: str,
                 lease_seconds: float, prefix: str = "") -> None:
        self._collection = collection
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._lease_ms = int(lease_seconds * 1000)
        self._owner_field = f"{prefix}owner"
        self._token_field = f"{prefix}token"
        self._until_field = f"{prefix}until"
        # The fields of a free lease (also what a new document starts with).
        self.free: Document = {self._owner_field: None, self._token_field: None,
                               self._until_field: None}
        self._takeable: Document = {"$or": [
            {self._owner_field: None}, {self._owner_field: owner},
            {"$expr": {"$lt": [f"${self._until_field}", "$$NOW"]}}]}

    def takeable(self) -> Document:
        """Filter: the lease is free, expired, or (stale) this owner's own. Its key is
        ``$or``: combine it with filters that have none at their top."""
        return dict(self._takeable)

    def held(self, lease: Lease) -> Document:
        """Filter matching the document only while ``lease`` is still held."""
        return {"_id": lease.document_id, self._token_field: lease.token}

    def _until(self) -> Document:
        return {"$add": ["$$NOW", self._lease_ms]}

    async def take(self, document_id: Any, *, where: Document | None = None,
                   projection: Document | None = None, create: bool = False,
                   ) -> tuple[Lease, Document] | None:
        """Take the lease of the document if it is takeable and matches ``where`` (no
        ``$or`` at its top); the lease and the document as it is then. ``create``: a
        missing document is created free first. None if someone else holds it."""
        token = uuid.uuid4().hex
        query = {"_id": document_id, **self.takeable(), **(where or {})}
        taking = [{"$set": {self._owner_field: self.owner, self._token_field: token,
                            self._until_field: self._until()}}]
        document = await self._collection.find_one_and_update(
            query, taking, projection=projection, return_document=ReturnDocument.AFTER)
        if document is None and create:
            # $expr cannot go into an upsert: create the document free, then take it.
            created = await self._collection.update_one(
                {"_id": document_id}, {"$setOnInsert": self.free}, upsert=True)
            if created.upserted_id is not None:
                document = await self._collection.find_one_and_update(
                    query, taking, projection=projection, return_document=ReturnDocument.AFTER)
        return None if document is None else (Lease(document_id, token), document)

    def taken_at(self, document: Document) -> datetime:
        """MongoDB's time when the lease was taken, from the document :meth:`take` returned."""
        until: datetime = document[self._until_field]
        return until - timedelta(milliseconds=self._lease_ms)

    async def renew(self, lease: Lease) -> bool:
        """Extend the lease; False if it expired and someone else took it."""
        result = await self._collection.update_one(
            self.held(lease), [{"$set": {self._until_field: self._until()}}])
        return result.matched_count == 1

    async def release(self, lease: Lease, *, where: Document | None = None,
                      also_set: Document | None = None) -> bool:
        """Free the lease if still held (and the document matches ``where``), setting
        ``also_set`` (aggregation expressions) with it; whether it was."""
        result = await self._collection.update_one(
            {**self.held(lease), **(where or {})}, [{"$set": {**self.free, **(also_set or {})}}])
        return result.matched_count == 1

    async def heartbeat(self, lease: Lease) -> None:
        """Renew ``lease`` until cancelled (:func:`keep_alive`); return when it is lost."""
        await keep_alive(partial(self.renew, lease), self.lease_seconds)


def renew_interval(lease_seconds: float) -> float:
    """How often a holder renews its lease."""
    return lease_seconds / RENEWALS_PER_LEASE


async def keep_alive(renew: Renew, lease_seconds: float, *,
                     retry_seconds: float = RENEW_RETRY_SECONDS) -> None:
    """Renew the lease until cancelled; return when a renewal finds it lost."""
    interval = renew_interval(lease_seconds)
    delay = interval
    while True:
        await asyncio.sleep(delay)
        try:
            renewed = await renew()
        except Exception as exc:  # transient: the lease may still be ours, try again soon
            log.warning("lease_renew_failed", error=f"{type(exc).__name__}: {exc}")
            delay = min(retry_seconds, interval)
            continue
        if not renewed:
            return
        delay = interval
