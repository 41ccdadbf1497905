"""Finding the projects a callback is for, with short-lived caches for the hot path.

A community's projects are cached for ``ttl_seconds`` once found (a burst for a known
community costs one query per ``ttl_seconds``); a miss always asks MongoDB, so a project
created a moment ago is found on the next callback. A secret that addresses none of
the cached projects is checked once more against MongoDB, so a rotated secret works at
once. Which projects a secret addresses is :mod:`.addressing`'s rule.

That re-check is what a flood of forged callbacks would turn into one MongoDB read each,
so refusals are cached as well, per community, for ``refusal_ttl_seconds`` (a window
starting at the first refusal): a secret MongoDB refused is refused again from memory,
and a community gets at most ``RECHECKS_PER_WINDOW`` re-checks per window. A flood costs
a few reads per community and window whatever secrets it tries.

A secret stored in MongoDB must still work at once, even while a flood keeps its
community's re-checks used up: a change stream on ``projects`` (:data:`KEY_CHANGES`:
a project's community, secret or code changed, a project added or removed) makes the
directory forget everything it cached (:meth:`ProjectDirectory.forget`). While the
stream is down it forgets every ``STREAM_DOWN_FORGET_SECONDS`` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from cachetools import TTLCache
from pymongo.asynchronous.collection import AsyncCollection

from services.callback_gateway.addressing import ProjectKeys, addressed_projects
from shared.documents import DocumentError, Project, id_label
from shared.mongo import Document

log = structlog.get_logger(__name__)

RECHECKS_PER_WINDOW = 3  # a rotation needs 2: the old secret refused, the new one found
REFUSED_SECRETS_KEPT = 64  # per community; later refusals still count as re-checks
STREAM_DOWN_FORGET_SECONDS = 1.0
STREAM_RETRY_SECONDS = 10.0

KEY_FIELDS = ("vk_group_id", "vk_callback_secret", "vk_confirmation_code")
# Changes that can change a lookup's answer; the refresher's ``refresh_status`` writes
# (one per refresh) are not among them.
KEY_CHANGES: tuple[dict[str, Any], ...] = ({"$match": {"$or": [
    {"operationType": {"$ne": "update"}},  # insert, replace, delete, drop, invalidate...
    *({f"updateDescription.updatedFields.{name}": {"$exists": True}} for name in KEY_FIELDS),
    {"updateDescription.removedFields": {"$in": list(KEY_FIELDS)}},
]}},)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The projects of a request's community (empty: unknown), those its secret
    addresses, and whether this request cost a MongoDB read (requests arriving while
    that read is in flight share it)."""

    projects: tuple[ProjectKeys, ...]
    addressed: tuple[ProjectKeys, ...]
    read_now: bool


@dataclass(slots=True)
class _Refusals:
    """A community's refusals in the current window."""

    rechecks: int = 0
    secrets: set[bytes] = field(default_factory=set)  # digests, not the secrets


def _digest(secret: str | None) -> bytes:
    return hashlib.blake2b((secret or "").encode(), digest_size=16).digest()


class ProjectDirectory:
    def __init__(self, projects: AsyncCollection[Document], ttl_seconds: float,
                 refusal_ttl_seconds: float, max_entries: int = 100_000,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._projects = projects
        self._known: TTLCache[int, tuple[ProjectKeys, ...]] | None = (
            TTLCache(maxsize=max_entries, ttl=ttl_seconds, timer=timer)
            if ttl_seconds > 0 else None)
        self._refusals: TTLCache[int, _Refusals] | None = (
            TTLCache(maxsize=max_entries, ttl=refusal_ttl_seconds, timer=timer)
            if refusal_ttl_seconds > 0 else None)
        self._generation = 0  # bumped by forget(): a read begun before it is not cached
        self._reading: dict[int, asyncio.Task[tuple[tuple[ProjectKeys, ...], bool]]] = {}

    def forget(self) -> None:
        """Drop every cached project and refusal (projects changed in MongoDB)."""
        self._generation += 1
        if self._known is not None:
            self._known.clear()
        if self._refusals is not None:
            self._refusals.clear()

    async def lookup(self, group_id: int, secret: str | None) -> Lookup:
        """The request's projects; reads MongoDB on a miss, or to re-check a refusal."""
        cached = self._known.get(group_id) if self._known is not None else None
        if cached is not None:
            addressed = addressed_projects(cached, secret)
            if addressed or self._refused_before(group_id, secret):
                return Lookup(cached, addressed, read_now=False)
        projects, started_here, current = await self._read_shared(group_id)
        addressed = addressed_projects(projects, secret)
        if projects and not addressed:
            self._note_refusal(group_id, secret, recheck=started_here and current)
        return Lookup(projects, addressed, read_now=started_here)

    async def _read_shared(self, group_id: int
                           ) -> tuple[tuple[ProjectKeys, ...], bool, bool]:
        """The community's projects from MongoDB, one read for all lookups arriving while
        it is in flight (a burst would otherwise read once per request); whether this
        lookup started the read; whether nothing was forgotten meanwhile."""
        reading = self._reading.get(group_id)
        started_here = reading is None
        if reading is None:
            # A task of its own: a cancelled request does not cancel the others' answer.
            reading = asyncio.create_task(self._read_and_cache(group_id))
            self._reading[group_id] = reading
            reading.add_done_callback(lambda done: self._read_done(group_id, done))
        projects, current = await asyncio.shield(reading)
        return projects, started_here, current

    async def _read_and_cache(self, group_id: int) -> tuple[tuple[ProjectKeys, ...], bool]:
        generation = self._generation
        projects = await self._read(group_id)
        current = generation == self._generation  # else it may be out of date already
        if current and projects and self._known is not None:
            self._known[group_id] = projects
        return projects, current

    def _read_done(self, group_id: int, reading: asyncio.Task[Any]) -> None:
        del self._reading[group_id]
        if not reading.cancelled():
            reading.exception()  # retrieved: every waiter may have gone

    def _refused_before(self, group_id: int, secret: str | None) -> bool:
        """MongoDB was asked about this community's refusals often enough this window."""
        refusals = self._refusals.get(group_id) if self._refusals is not None else None
        return refusals is not None and (refusals.rechecks >= RECHECKS_PER_WINDOW
                                         or _digest(secret) in refusals.secrets)

    def _note_refusal(self, group_id: int, secret: str | None, *, recheck: bool) -> None:
        """Remember a secret MongoDB refused; ``recheck``: it cost a read of its own."""
        if self._refusals is None:
            return
        refusals = self._refusals.get(group_id)
        if refusals is None:  # a new window; mutated in place below, so it keeps its start
            refusals = self._refusals[group_id] = _Refusals()
        refusals.rechecks += recheck
        if len(refusals.secrets) < REFUSED_SECRETS_KEPT:
            refusals.secrets.add(_digest(secret))

    async def _read(self, group_id: int) -> tuple[ProjectKeys, ...]:
        """Every usable project of the community, in ``_id`` order (only on a miss: the
        model's cost is not paid per request)."""
        cursor = self._projects.find(
            {"vk_group_id": group_id},
            projection={"_id": 1, "vk_confirmation_code": 1, "vk_callback_secret": 1},
        ).sort("_id", 1)
        return tuple([keys async for document in cursor
                      if (keys := project_keys(document)) is not None])


def project_keys(document: Document) -> ProjectKeys | None:
    """What the gateway needs of a ``projects`` document, read by the shared tolerant
    :class:`~shared.documents.Project`; None (logged) if the document cannot be used."""
    try:
        project = Project.from_document(document)
    except DocumentError as exc:
        log.warning("project_unusable", project_id=id_label(document.get("_id")), error=str(exc))
        return None
    return ProjectKeys(project_id=project.label,
                       confirmation_code=project.vk_confirmation_code or "",
                       callback_secret=project.vk_callback_secret or None)
