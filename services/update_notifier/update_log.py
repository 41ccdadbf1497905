"""The durable update log in MongoDB: one entry per ``ProjectUpdated``, numbered by seq.

Documents of ``project_updates``::

    {_id: seq, project_id, content_types, reason, correlation_id, occurred_at,
     created_at, dedupe_key}

``seq`` is strictly increasing and has no holes; entries expire after the
retention window (TTL on ``created_at``, declared in :mod:`shared.mongo`).

Why one transaction per append: a cursor reader at N asks for "seq > N". If seq
N+1 could become visible before seq N, a reader polling in between would move its
cursor past N and never see it. So the counter increment and the insert commit
together, and because every append writes the same counter document, two
appends cannot both commit from overlapping snapshots (the second gets a write
conflict and retries from a fresh snapshot): commit order equals seq order, and
once N+1 is visible, N is too. Commits wait for a majority, and reads use the
majority read concern, so a failover cannot roll back an entry a reader saw and
hand its seq to another one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.change_stream import AsyncCollectionChangeStream
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from shared.messages import ProjectUpdated
from shared.mongo import COUNTERS, PROJECT_UPDATES, Document

# Documents in ``counters``.
SEQ_COUNTER_ID = "project_updates"  # {seq: last allocated seq}
LEGACY_CURSOR_ID = "project_updates.legacy_cursor"  # {seq: where legacy getUpdates got to}

log = structlog.get_logger(__name__)

_MAJORITY_READ = ReadConcern("majority")
# A transaction whose client died (kill -9, OOM, a lost host) keeps its write on the
# counter until the server gives up on it (``transactionLifetimeLimitSeconds``, 60 s by
# default): every append of every replica conflicts until then. An append that keeps
# conflicting looks for such orphans and ends them (see abort_orphaned_transactions).
ORPHAN_CHECK_AFTER_SECONDS = 1.0
ORPHAN_OPEN_SECONDS = 5.0  # no append keeps a transaction open (let alone idle) this long
_MAJORITY_WRITE = WriteConcern("majority")
ENTRY_PROJECTION = {"project_id": True, "content_types": True, "correlation_id": True}


@dataclass(frozen=True, slots=True)
class Entry:
    """What readers need of one log entry."""

    seq: int
    project_id: str
    content_types: tuple[str, ...]
    correlation_id: str = ""

    @classmethod
    def from_document(cls, document: Document) -> Entry:
        return cls(int(document["_id"]), str(document["project_id"]),
                   tuple(str(kind) for kind in document.get("content_types", ())),
                   str(document.get("correlation_id", "")))


@dataclass(frozen=True, slots=True)
class Appended:
    """Result of an append: the entry's seq, and whether it was already in the log."""

    seq: int
    duplicate: bool


def dedupe_key(update: ProjectUpdated) -> str:
    """Identity of a message: a redelivery has the same key, any other message another.

    The whole message is hashed, not just (correlation_id, project_id): one
    refresh may legitimately publish several updates for the same project under
    one correlation id (one per content type), and none of them may be dropped.
    """
    return hashlib.blake2b(update.model_dump_json().encode(), digest_size=16).hexdigest()


class UpdateLog:
    """Appends to and reads the update log of one database."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self.entries: AsyncCollection[Document] = db.get_collection(
            PROJECT_UPDATES, read_concern=_MAJORITY_READ, write_concern=_MAJORITY_WRITE)
        self._counters: AsyncCollection[Document] = db.get_collection(
            COUNTERS, read_concern=_MAJORITY_READ, write_concern=_MAJORITY_WRITE)
        # Appends of one process take turns: they would only make each other retry
        # on the counter's write conflict. Replicas still contend, and retry.
        self._append_turn = asyncio.Lock()
        self._orphans_checked = 0.0

    async def prepare(self) -> None:
        """Idempotent start-up: a counter that is never behind the log (the indexes, the
        unique ``dedupe_key`` one included, are declared in :mod:`shared.mongo`).

        The counter is created here (outside any transaction) so concurrent first
        appends do not race to upsert it, and raised to the newest entry in case
        ``counters`` was lost while the log was not (reusing a seq would be fatal).
        """
        newest = await self.entries.find_one({}, {"_id": True}, sort=[("_id", DESCENDING)])
        await self._counters.update_one(
            {"_id": SEQ_COUNTER_ID},
            {"$max": {"seq": int(newest["_id"]) if newest else 0}},
            upsert=True,
        )

    async def append(self, update: ProjectUpdated) -> Appended:
        """Record one update under the next seq, unless this very message is already there."""
        key = dedupe_key(update)
        started = time.monotonic()

        async def in_transaction(session: AsyncClientSession) -> Appended:
            if time.monotonic() - started > ORPHAN_CHECK_AFTER_SECONDS:
                await self._end_orphans()  # still conflicting: a dead writer's transaction?
            # First statement: the counter. It serialises all appends (see module
            # docstring), which also makes the duplicate check below race-free.
            counter = await self._counters.find_one_and_update(
                {"_id": SEQ_COUNTER_ID}, {"$inc": {"seq": 1}}, upsert=True,
                return_document=ReturnDocument.AFTER, session=session,
            )
            assert counter is not None  # upsert with AFTER always returns the document
            seq = int(counter["seq"])
            earlier = await self.entries.find_one({"dedupe_key": key}, {"_id": True},
                                                  session=session)
            if earlier is not None:
                await session.abort_transaction()  # gives the seq back: no hole
                return Appended(int(earlier["_id"]), duplicate=True)
            await self.entries.insert_one(_entry_document(seq, update, key), session=session)
            return Appended(seq, duplicate=False)

        async with self._append_turn, self._db.client.start_session() as session:
            # with_transaction retries the whole callback on TransientTransactionError
            # (write conflicts on the counter included), with jittered backoff.
            return await session.with_transaction(in_transaction, write_concern=_MAJORITY_WRITE)

    async def _end_orphans(self) -> None:
        """At most once a second: end orphaned transactions (see the module constants)."""
        now = time.monotonic()
        if now - self._orphans_checked < 1.0:
            return
        self._orphans_checked = now
        try:
            ended = await abort_orphaned_transactions(self._db.client, ORPHAN_OPEN_SECONDS)
        except PyMongoError as exc:  # e.g. no inprog / killAnySession privilege
            log.warning("orphaned_transactions_check_failed", error=type(exc).__name__)
            return
        if ended:
            log.warning("orphaned_transactions_ended", sessions=ended)

    async def latest_seq(self) -> int:
        """The last seq allocated; every entry up to it is visible (or expired)."""
        counter = await self._counters.find_one({"_id": SEQ_COUNTER_ID})
        return int(counter["seq"]) if counter else 0

    async def oldest_seq(self) -> int | None:
        """The smallest seq still retained, or None when the log is empty."""
        oldest = await self.entries.find_one({}, {"_id": True}, sort=[("_id", ASCENDING)])
        return int(oldest["_id"]) if oldest else None

    async def entries_after(self, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries with seq > ``after``, in seq order."""
        cursor = self.entries.find({"_id": {"$gt": after}}, ENTRY_PROJECTION,
                                   sort=[("_id", ASCENDING)], limit=limit)
        return [Entry.from_document(document) async for document in cursor]

    async def project_ids_between(self, low: int, high: int) -> list[str]:
        """Distinct projects with an entry whose seq is in ``(low, high]``, sorted."""
        ids = await self.entries.distinct("project_id", {"_id": {"$gt": low, "$lte": high}})
        return sorted(str(project_id) for project_id in ids)

    async def advance_legacy_cursor(self, latest: int) -> int | None:
        """Move the shared legacy cursor up to ``latest``; return where it was (None: never set).

        ``$max`` never moves it back, so a replica holding an older ``latest`` gets
        back a position at or past its own and reports nothing twice.
        """
        before = await self._counters.find_one_and_update(
            {"_id": LEGACY_CURSOR_ID}, {"$max": {"seq": latest}}, upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return int(before["seq"]) if before else None

    async def watch_changes(self) -> AsyncCollectionChangeStream[Document]:
        """A change stream of new entries and of deleted ones (TTL, operators), starting now."""
        return await self.entries.watch(
            [{"$match": {"operationType": {"$in": ["insert", "delete"]}}}])

    async def ping(self) -> None:
        await self._db.command("ping")


async def abort_orphaned_transactions(client: AsyncMongoClient[Document],
                                      open_seconds: float) -> int:
    """End the transactions of this application (same ``appname``) that are idle and have
    been open for ``open_seconds``: their client is gone, since ours finish in
    milliseconds. Their sessions are killed, which aborts them at once instead of when
    the server's lifetime limit runs out. Every service has its own ``appname``
    (:func:`shared.mongo.connect`), so the longer transactions of the others (a
    refresher's snapshot) are never touched. Needs the ``inprog`` and
    ``killAnySession`` privileges. Returns how many were ended."""
    application = client.options.pool_options.metadata.get("application", {}).get("name")
    if not application:
        return 0
    cursor = await client.admin.aggregate([
        {"$currentOp": {"allUsers": True, "idleSessions": True}},
        {"$match": {"type": "idleSession", "appName": application,
                    "transaction.timeOpenMicros": {"$gt": int(open_seconds * 1_000_000)}}},
    ])
    orphans = [op["lsid"]["id"] async for op in cursor]
    if orphans:
        await client.admin.command("killSessions", [{"id": orphan} for orphan in orphans])
    return len(orphans)


def _entry_document(seq: int, update: ProjectUpdated, key: str) -> dict[str, Any]:
    return {
        "_id": seq,
        "project_id": update.project_id,
        "content_types": [kind.value for kind in update.content_types],
        "reason": update.reason,
        "correlation_id": update.correlation_id,
        "occurred_at": update.occurred_at,
        "created_at": datetime.now(UTC),
        "dedupe_key": key,
    }
