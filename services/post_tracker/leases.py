"""Per-project leases between tracker replicas: one replica at a time calls VK for a project.

The lease is an economy, not the safety guarantee (that is the per-post claim,
:mod:`services.post_tracker.store`): with one replica per project, the VK client's
per-token rate limiter — which lives in one process — is the only one spending that
project's token, so a backlog is worked through at the token's rate without error 6
storms, and one ``wall.get`` per project per cycle serves every replica.

One document per project in ``post_tracker_leases``::

    {_id: project_id, owner, token, until, verified_at}

The lease is :mod:`shared.leases`' (MongoDB's clock decides expiry), short
(``TRACKER_LEASE_SECONDS``, 10 s) and renewed by a heartbeat while a run holds it, so a
replica that dies delays its projects' posts by at most one lease. A lease still marked
as this tracker's own when it starts a new run for the project is stale (a run that
failed while MongoDB had no primary could not release it) and is taken again at once: a
tracker runs one project at a time. The collection (declared in :mod:`shared.mongo`)
needs no index beyond ``_id``.
"""

from __future__ import annotations

from collections.abc import Collection

from pymongo.asynchronous.database import AsyncDatabase

from shared.documents import BsonId
from shared.leases import Lease, MongoLeases
from shared.mongo import POST_TRACKER_LEASES, Document


class ProjectLeases(MongoLeases):
    def __init__(self, db: AsyncDatabase[Document], owner: str, lease_seconds: float) -> None:
        super().__init__(db[POST_TRACKER_LEASES], owner=owner, lease_seconds=lease_seconds)
        self._leases = db[POST_TRACKER_LEASES]

    async def acquire(self, project_id: BsonId) -> Lease | None:
        """Take the project's lease if it is free, expired or (stale) our own; None if
        someone else holds it."""
        taken = await self.take(project_id, projection={"_id": 1}, create=True)
        return None if taken is None else taken[0]

    async def mark_verified(self, lease: Lease) -> None:
        """Record that the project's wall was just looked at (by anyone holding the lease)."""
        await self._leases.update_one(self.held(lease), [{"$set": {"verified_at": "$$NOW"}}])

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
