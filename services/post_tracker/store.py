"""``system_posts`` reads and writes: the claim and every status transition.

Each transition is one atomic single-document write, so a crash never leaves a post
half-written. Writes after the claim are fenced by the claim itself
(``claimed_by`` + ``claimed_at``): if the post was changed meanwhile (moved back,
deleted, claimed again) the write matches nothing and is dropped.

Documents are read through the shared models (:mod:`shared.documents`); ids are used
as the BSON values they are. A pending post that cannot be used (no usable
``project_id``, a ``publication_date`` that is not a date, a malformed field) is
set to ``error`` by :meth:`PostStore.reject`, once, instead of being looked at again
and again: a due one when its turn comes, one that can never become due (no usable
``project_id``, a ``publication_date`` that is not a date) by the sweep once per
tracker interval (:meth:`PostStore.unusable_pending`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker.decisions import Fail, KeepPublishing, ProjectRead, Retry
from services.post_tracker.variables import merge_variables
from shared.documents import (
    BsonId,
    DocumentError,
    PostStatus,
    Project,
    SystemPost,
    as_integer,
    id_label,
    is_usable_id,
)
from shared.messages import new_correlation_id
from shared.mongo import GLOBAL_VARIABLES, PROJECTS, SYSTEM_POSTS, Document

_OLDEST_FIRST = [("publication_date", ASCENDING), ("_id", ASCENDING)]
# BSON types a project id can never have; such posts, and those without one, are rejected.
_NOT_ID_TYPES = ["null", "array", "object", "bool", "undefined"]
# Unusable pending posts rejected per sweep (the rest in the next ones).
_REJECT_BATCH = 100


@dataclass(frozen=True, slots=True)
class Unusable:
    """A pending post whose document cannot be used, and why (field and type)."""

    id: Any
    project_id: Any
    reason: str

    @property
    def key(self) -> str:
        return id_label(self.id)


def read_post(document: Document) -> SystemPost | Unusable:
    try:
        return SystemPost.from_document(document)
    except DocumentError as exc:
        return Unusable(document.get("_id"), document.get("project_id"), str(exc))


def due_filter(now: datetime) -> Document:
    """Pending posts whose date has come and that are not held back by a back-off."""
    return {
        "status": PostStatus.PENDING.value,
        "publication_date": {"$lte": now},
        "$or": [{"not_before": None}, {"not_before": {"$lte": now}}],
    }


def claim_fence(post: SystemPost) -> Document:
    """Matches the post only while it is still in the claim ``post`` was read under."""
    return {"_id": post.id, "status": PostStatus.PUBLISHING.value, "claimed_by": post.claimed_by,
            "claimed_at": post.claimed_at}


def claim_update(candidate: SystemPost, *, instance_id: str, now: datetime,
                 sent_text: str, guid: str) -> Document:
    """The claim: status, who, when, the text about to be sent and its guid."""
    return {"$set": {
        "status": PostStatus.PUBLISHING.value,
        "claimed_by": instance_id,
        "claimed_at": now,
        "sent_text": sent_text,
        "guid": guid,
        "resends": 0,
        "wall_read_at": None,
        "correlation_id": candidate.correlation_id or new_correlation_id(),
        "vk_post_id": None,
        "error": None,
        "outcome_unknown": False,
    }}


class PostStore:
    def __init__(self, db: AsyncDatabase[Document], instance_id: str) -> None:
        self._posts = db[SYSTEM_POSTS]
        self._projects = db[PROJECTS]
        self._variables = db[GLOBAL_VARIABLES]
        self.instance_id = instance_id

    # --- scheduling ---------------------------------------------------------------------

    async def due_projects(self, now: datetime) -> list[BsonId]:
        """Projects with posts to send now, the one with the oldest such post first."""
        cursor = await self._posts.aggregate([
            {"$match": {**due_filter(now), "project_id": {"$not": {"$type": _NOT_ID_TYPES}}}},
            {"$group": {"_id": "$project_id", "oldest": {"$min": "$publication_date"}}},
            {"$sort": {"oldest": 1, "_id": 1}},
        ])
        return [group["_id"] async for group in cursor if is_usable_id(group["_id"])]

    async def unusable_pending(self) -> list[Unusable]:
        """Pending posts that can never become due: no usable project id, or a
        ``publication_date`` that is not a date (a string, a number, missing)."""
        cursor = self._posts.find({"status": PostStatus.PENDING.value, "$or": [
            {"project_id": {"$type": [*_NOT_ID_TYPES, "double", "decimal"]}},
            {"project_id": {"$exists": False}},
            {"publication_date": {"$not": {"$type": "date"}}},
        ]}, limit=_REJECT_BATCH)
        # A whole number stored as a double is a usable id: the model has the last word.
        return [post async for document in cursor
                if isinstance(post := read_post(document), Unusable)]

    async def reject(self, post_id: Any, reason: str, now: datetime, *,
                     text: Any = None, fence_text: bool = False) -> bool:
        """A pending post that cannot be sent → ``error`` with ``reason``, once.

        With ``fence_text`` only while its text is still ``text`` (what was judged).
        """
        fence: Document = {"_id": post_id, "status": PostStatus.PENDING.value}
        if fence_text:
            fence["text"] = text
        result = await self._posts.update_one(fence, {"$set": {
            "status": PostStatus.ERROR.value, "error": reason, "error_code": None,
            "failed_at": now}})
        return result.modified_count == 1

    async def next_due_after(self, now: datetime) -> datetime | None:
        """When the next pending post becomes due: its date, or the end of its back-off."""
        planned = await self._posts.find_one(
            {"status": PostStatus.PENDING.value, "publication_date": {"$gt": now}},
            projection={"publication_date": 1}, sort=_OLDEST_FIRST)
        held = await self._posts.find_one(
            {"status": PostStatus.PENDING.value, "publication_date": {"$lte": now},
             "not_before": {"$gt": now}},
            projection={"not_before": 1}, sort=[("not_before", ASCENDING)])
        times: list[datetime] = []
        if planned is not None:
            times.append(planned["publication_date"])
        if held is not None:
            times.append(held["not_before"])
        return min(times, default=None)

    async def projects_publishing(self) -> list[BsonId]:
        return [value for value in await self._posts.distinct(
            "project_id", {"status": PostStatus.PUBLISHING.value}) if is_usable_id(value)]

    # --- publishing ---------------------------------------------------------------------

    async def next_candidate(self, project_id: BsonId,
                             now: datetime) -> SystemPost | Unusable | None:
        """The project's oldest due post (read only; :meth:`claim` takes it)."""
        document = await self._posts.find_one({**due_filter(now), "project_id": project_id},
                                              sort=_OLDEST_FIRST)
        return None if document is None else read_post(document)

    async def claim(self, candidate: SystemPost, *, now: datetime, sent_text: str,
                    guid: str) -> SystemPost | None:
        """Take ``candidate`` for sending; None if another tracker took it or it changed.

        One atomic ``find_one_and_update``: the post is still due, still pending, and
        its text is still the one ``sent_text`` was made from.
        """
        document = await self._posts.find_one_and_update(
            {**due_filter(now), "_id": candidate.id, "text": candidate.stored_text},
            claim_update(candidate, instance_id=self.instance_id, now=now, sent_text=sent_text,
                         guid=guid),
            return_document=ReturnDocument.AFTER)
        return None if document is None else SystemPost.from_document(document)

    async def record_published(self, post: SystemPost, vk_post_id: int, now: datetime, *,
                               attempts: int, resent: bool = False) -> bool:
        result = await self._posts.update_one(claim_fence(post), {
            "$set": {"vk_post_id": vk_post_id, "published_at": now, "attempts": attempts},
            "$inc": {"resends": int(resent)}})
        return result.modified_count == 1

    async def record_failed(self, post: SystemPost, decision: Fail, now: datetime) -> bool:
        result = await self._posts.update_one(claim_fence(post), {"$set": {
            "status": PostStatus.ERROR.value, "error": decision.error, "error_code": decision.code,
            "attempts": decision.attempts, "failed_at": now}})
        return result.modified_count == 1

    async def record_retry(self, post: SystemPost, decision: Retry) -> bool:
        result = await self._posts.update_one(claim_fence(post), {
            "$set": {"status": PostStatus.PENDING.value, "attempts": decision.attempts,
                     "refusals": decision.refusals, "not_before": decision.not_before,
                     "last_error": decision.error, "last_error_code": decision.code},
            "$unset": {"claimed_by": "", "claimed_at": "", "sent_text": ""},
        })
        return result.modified_count == 1

    async def record_unknown(self, post: SystemPost, decision: KeepPublishing, *,
                             attempts: int, resent: bool = False) -> bool:
        result = await self._posts.update_one(claim_fence(post), {
            "$set": {"outcome_unknown": True, "last_error": decision.error,
                     "last_error_code": decision.code, "attempts": attempts},
            "$inc": {"resends": int(resent)}})
        return result.modified_count == 1

    # --- verification -------------------------------------------------------------------

    async def publishing(self, project_id: BsonId) -> list[SystemPost | Unusable]:
        cursor = self._posts.find({"project_id": project_id, "status": PostStatus.PUBLISHING.value},
                                  sort=[("claimed_at", ASCENDING), ("_id", ASCENDING)])
        return [read_post(document) async for document in cursor]

    async def reserved_ids(self, project_id: BsonId) -> set[int]:
        """Wall ids already known as other (not ``publishing``) system posts of the project."""
        cursor = self._posts.find(
            {"project_id": project_id, "status": {"$ne": PostStatus.PUBLISHING.value},
             "vk_post_id": {"$type": "number"}},
            projection={"vk_post_id": 1})
        return {post_id async for document in cursor
                if (post_id := as_integer(document["vk_post_id"])) is not None}

    async def mark_wall_read(self, posts: Sequence[SystemPost], now: datetime) -> None:
        """The wall was read and did not show ``posts`` (so a later failure to read it
        is not "unreadable for the whole window")."""
        if posts:
            await self._posts.update_many(
                {"_id": {"$in": [post.id for post in posts]},
                 "status": PostStatus.PUBLISHING.value}, {"$set": {"wall_read_at": now}})

    async def delete_verified(self, post: SystemPost) -> bool:
        result = await self._posts.delete_one(claim_fence(post))
        return result.deleted_count == 1

    async def mark_possible_error(self, post: SystemPost | Unusable, error: str,
                                  now: datetime) -> bool:
        fence = (claim_fence(post) if isinstance(post, SystemPost)
                 else {"_id": post.id, "status": PostStatus.PUBLISHING.value})
        result = await self._posts.update_one(fence, {"$set": {
            "status": PostStatus.POSSIBLE_ERROR.value, "error": error, "failed_at": now}})
        return result.modified_count == 1

    async def status_groups(self) -> list[tuple[Any, int]]:
        """(status value, number of posts) for every value ``status`` has in the collection."""
        cursor = await self._posts.aggregate([{"$group": {"_id": "$status", "posts": {"$sum": 1}}}])
        return [(group["_id"], int(group["posts"])) async for group in cursor]

    # --- reference data -----------------------------------------------------------------

    async def project(self, project_id: BsonId) -> ProjectRead:
        """The project, the reason its document is unusable, or None if there is none."""
        document = await self._projects.find_one({"_id": project_id})
        if document is None:
            return None
        try:
            return Project.from_document(document)
        except DocumentError as exc:
            return exc

    async def variables(self, project_id: BsonId) -> dict[str, str]:
        cursor = self._variables.find({"project_id": {"$in": [project_id, None]}})
        return merge_variables([document async for document in cursor], project_id)
