"""Per-project leases between tracker replicas: one replica at a time calls VK for a project.

The lease is an economy, not the safety guarantee (that is the per-post claim,
:mod:`services.post_tracker.store`): with one replica per project, the VK client's
per-token rate limiter — which lives in one process — is the only one spending that
project's token, so a backlog is worked through at the token's rate without error 6
storms, and one ``wall.get`` per project per cycle serves every replica.

One document per project in ``post_tracker_leases``::

    {_id: project_id, owner, token, until, verified_at}

MongoDB's clock (``$$NOW``) decides expiry, so replicas' clocks need not agree. The
lease is short (``TRACKER_LEASE_SECONDS``, 10 s) and renewed by a heartbeat while a run
holds it (:mod:`shared.leases`), so a replica that dies delays its projects' posts by at
most one lease. A lease still marked as this tracker's own when it starts a new run for
the project is stale (a run that failed while MongoDB had no primary could not release
it) and is taken again at once: a tracker runs one project at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from shared.documents import BsonId
from shared.mongo import POST_TRACKER_LEASES, Document

# Not yet declared in shared/mongo.py (see the service's README notes); MongoDB creates
# it on first use and it needs no index beyond _id.


@dataclass(frozen=True, slots=True)
class Lease:
    project_id: BsonId  # as stored in system_posts: the lease's _id
    token: str  # identifies this taking of the lease


class ProjectLeases:
    def __init__(self, db: AsyncDatabase[Document], owner: str, lease_seconds: float) -> None:
        self._leases = db[POST_TRACKER_LEASES]
        self._owner = owner
        self._lease_ms = int(lease_seconds * 1000)

    def _held(self, lease: Lease) -> Document:
        return {"_id": lease.project_id, "token": lease.token}

    async def acquire(self, project_id: BsonId) -> Lease | None:
        """Take the project's lease if it is free, expired or (stale) our own; None if
        someone else holds it."""
        token = uuid.uuid4().hex
        if await self._take(project_id, token):
            return Lease(project_id, token)
        # No document yet? Create it free ($expr cannot go into an upsert), then take it.
        created = await self._leases.update_one(
            {"_id": project_id}, {"$setOnInsert": {"owner": None, "token": None, "until": None}},
            upsert=True)
        if created.upserted_id is not None and await self._take(project_id, token):
            return Lease(project_id, token)
        return None

    async def _take(self, project_id: BsonId, token: str) -> bool:
        taken = await self._leases.find_one_and_update(
            {"_id": project_id, "$or": [{"owner": None}, {"owner": self._owner},
                                        {"$expr": {"$lt": ["$until", "$$NOW"]}}]},
            [{"$set": {"owner": self._owner, "token": token,
                       "until": {"$add": ["$$NOW", self._lease_ms]}}}],
            projection={"_id": 1})
        return taken is not None

    async def renew(self, lease: Lease) -> bool:
        """Extend the lease; False if it expired and someone else took it."""
        result = await self._leases.update_one(
            self._held(lease), [{"$set": {"until": {"$add": ["$$NOW", self._lease_ms]}}}])
        return result.matched_count == 1

    async def release(self, lease: Lease) -> None:
        await self._leases.update_one(self._held(lease), {"$set": {
            "owner": None, "token": None, "until": None}})

    async def mark_verified(self, lease: Lease) -> None:
        """Record that the project's wall was just looked at (by anyone holding the lease)."""
        await self._leases.update_one(self._held(lease), [{"$set": {"verified_at": "$$NOW"}}])

    async def verified_within(self, project_ids: Collection[BsonId],
                              seconds: float) -> set[BsonId]:
        """Those of ``project_ids`` whose wall was looked at less than ``seconds`` ago."""
        if not project_ids:
            return set()
        cursor = self._leases.find(
            {"_id": {"$in": list(project_ids)},
             "$expr": {"$gt": ["$verified_at", {"$subtract": ["$$NOW", int(seconds * 1000)]}]}},
            projection={"_id": 1})
        return {document["_id"] async for document in cursor}
