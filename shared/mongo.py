"""MongoDB: the one place that names collections and declares their indexes.

Collections written by other parts of the product (``projects``,
``global_variables``, ``system_posts``) are used as they are; the services only
add optional bookkeeping fields (see README, "MongoDB data contract").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.settings import Settings

Document = dict[str, Any]


class ContentType(StrEnum):
    """A kind of wall content the planner caches from VK."""

    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    SUGGESTED = "suggested"

    @property
    def collection(self) -> str:
        return f"{self.value}_posts"


PROJECTS = "projects"
GLOBAL_VARIABLES = "global_variables"
SYSTEM_POSTS = "system_posts"
# Service bookkeeping.
REFRESH_STATE = "refresh_state"  # one per (project, content type): tickets and the lease
REFRESH_FENCES = "refresh_fences"  # one per (project, content type): last applied fence
PROCESSED_EVENTS = "processed_events"  # VK (group_id, event_id) seen, kept 3 h
PROJECT_UPDATES = "project_updates"  # the durable update log behind cursors and SSE
POST_TRACKER_LEASES = "post_tracker_leases"  # one per project: which tracker talks to VK
COUNTERS = "counters"  # the update log's sequence and the legacy getUpdates position

PROCESSED_EVENT_TTL_SECONDS = 3 * 3600
NAMESPACE_EXISTS = 48  # MongoDB's error code


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    name: str
    indexes: tuple[IndexModel, ...]


def _post_cache_indexes() -> tuple[IndexModel, ...]:
    return (
        IndexModel([("project_id", ASCENDING), ("vk_post_id", ASCENDING)], unique=True,
                   name="project_post_unique"),
    )


def collection_specs(updates_retention_seconds: float) -> tuple[CollectionSpec, ...]:
    """Every collection the services use and its indexes."""
    return (
        CollectionSpec(PROJECTS, (
            IndexModel([("vk_group_id", ASCENDING)], name="vk_group_id"),
            # The refreshers' reconciliation takes the projects due, oldest first.
            IndexModel([("reconcile_at", ASCENDING)], name="reconcile_at"),
        )),
        CollectionSpec(GLOBAL_VARIABLES, (
            IndexModel([("project_id", ASCENDING), ("name", ASCENDING)], name="project_name"),
        )),
        *(CollectionSpec(content.collection, _post_cache_indexes()) for content in ContentType),
        CollectionSpec(SYSTEM_POSTS, (
            IndexModel([("status", ASCENDING), ("publication_date", ASCENDING)],
                       name="status_publication_date"),
            IndexModel([("project_id", ASCENDING), ("status", ASCENDING),
                        ("publication_date", ASCENDING)], name="project_status_publication_date"),
        )),
        CollectionSpec(REFRESH_STATE, ()),
        CollectionSpec(REFRESH_FENCES, ()),
        CollectionSpec(PROCESSED_EVENTS, (
            IndexModel([("seen_at", ASCENDING)], name="seen_at_ttl",
                       expireAfterSeconds=PROCESSED_EVENT_TTL_SECONDS),
        )),
        CollectionSpec(PROJECT_UPDATES, (
            IndexModel([("created_at", ASCENDING)], name="created_at_ttl",
                       expireAfterSeconds=int(updates_retention_seconds)),
            # A redelivered ProjectUpdated is recorded once (services/update_notifier).
            IndexModel([("dedupe_key", ASCENDING)], unique=True, name="dedupe_key_unique"),
        )),
        CollectionSpec(POST_TRACKER_LEASES, ()),
        CollectionSpec(COUNTERS, ()),
    )


def connect(settings: Settings, app_name: str) -> AsyncMongoClient[Document]:
    """A client whose datetimes come back timezone-aware UTC and that rides through a
    replica-set failover (``MONGO_URL`` lists the members and names ``replicaSet``).

    * Every write is acknowledged by a majority of the members (``w=majority``, also
      over a ``w`` in the URL): what we acknowledge — a refresh ticket before the broker
      ack, a claim, a status change, an update-log entry — must survive the primary's
      loss; a write acknowledged by the old primary alone is rolled back by the new one.
    * Retryable writes and reads: an operation cut by a step-down or a lost primary is
      retried once on the new one (our writes are idempotent or fenced anyway).
    * Server selection waits up to 30 s for a primary (the driver's default), longer
      than an election (~10 s after a primary's loss), so operations during a failover
      wait for the new primary instead of failing; callers still retry what fails (the
      tracker's cycle, the refresher's sweeper, broker redelivery). With 5 s, the
      failover scenario saw a ServerSelectionTimeoutError leave a tracker's
      AsyncMongoClient (PyMongo 4.20.1) wedged ("Lock is not acquired") for good.
    * No operation waits forever on a dead connection: a socket read gives up after
      10 s (``socketTimeoutMS``; none of our operations takes that long, change streams
      return every second) and a majority write after 10 s (``wtimeoutMS``). The
      failover scenario found a tracker run stuck for minutes on a connection to the
      killed primary without them.
    * Transactions go through ``with_transaction`` (retries on the
      ``TransientTransactionError`` / ``UnknownTransactionCommitResult`` labels) and
      change streams resume from their tokens by themselves (the driver, once per error).
    * ``app_name`` (the service's name) is MongoDB's ``appname``: ``currentOp`` and the
      server log tell the services apart by it, and the notifier ends orphaned
      transactions of its own ``appname`` only (``services/update_notifier/update_log.py``).
    """
    return AsyncMongoClient(str(settings.mongo_url), tz_aware=True,
                            serverSelectionTimeoutMS=30_000, appname=app_name,
                            w="majority", wTimeoutMS=10_000, socketTimeoutMS=10_000,
                            retryWrites=True, retryReads=True)


async def ensure_indexes(db: AsyncDatabase[Document], updates_retention_seconds: float) -> None:
    """Create every collection's indexes; idempotent, safe to run at each start."""
    existing = set(await db.list_collection_names())
    for spec in collection_specs(updates_retention_seconds):
        if spec.name not in existing:
            # Created up front: collections cannot be created inside a transaction.
            # Services starting together race here; "already exists" (48) is fine.
            try:
                await db.create_collection(spec.name, check_exists=False)
            except OperationFailure as exc:
                if exc.code != NAMESPACE_EXISTS:
                    raise
        collection: AsyncCollection[Document] = db[spec.name]
        if spec.indexes:
            await _sync_ttl(db, spec)
            await collection.create_indexes(list(spec.indexes))


async def _sync_ttl(db: AsyncDatabase[Document], spec: CollectionSpec) -> None:
    """Apply a changed TTL in place (create_index would refuse a different option)."""
    current = {index["name"]: index async for index in await db[spec.name].list_indexes()}
    for model in spec.indexes:
        wanted = model.document
        ttl = wanted.get("expireAfterSeconds")
        have = current.get(wanted["name"])
        if ttl is not None and have is not None and have.get("expireAfterSeconds") != ttl:
            await db.command({"collMod": spec.name,
                              "index": {"name": wanted["name"], "expireAfterSeconds": ttl}})
