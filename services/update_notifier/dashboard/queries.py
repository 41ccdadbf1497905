"""The dashboard's reads of MongoDB: projects with their counts, and the timeline's entries.

Aggregations bounded by the page's needs (:data:`MAX_PROJECTS`,
:data:`POSTS_PER_PROJECT`, :data:`RECENT_UPDATES_WINDOW`). Projects are read through
an inclusion projection, so tokens, callback secrets and confirmation codes never leave
the database.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.update_notifier.cursor import format_cursor
from services.update_notifier.dashboard.values import (
    TEXT_PREVIEW_CHARS,
    as_datetime,
    group_id,
    int_or_none,
    iso,
    safe_error,
    text_preview,
)
from services.update_notifier.update_log import UpdateLog
from shared.documents import PostStatus
from shared.messages import UpdateReason
from shared.mongo import PROCESSED_EVENTS, PROJECTS, SYSTEM_POSTS, ContentType, Document

# system_posts.status values of the data contract, in lifecycle order.
STATUSES = tuple(PostStatus)
MAX_PROJECTS = 500
POSTS_PER_PROJECT = 20
# The "has updates" dot compares a project's latest update with what the page saw; the
# latest update is looked for among this many newest log entries (bounded cost).
RECENT_UPDATES_WINDOW = 5000
# Inclusion projection: nothing else of a project (tokens, secrets, codes) is ever read.
PROJECT_FIELDS = {"name": True, "vk_group_id": True, "refresh_status": True,
                  "reconciled_at": True, "vk_token_rest.code": True,
                  "vk_token_rest.error": True, "vk_token_rest.since": True,
                  "vk_token_rest.probe_at": True}
TIMELINE_FIELDS = {"project_id": True, "content_types": True, "reason": True,
                   "correlation_id": True, "occurred_at": True, "created_at": True}


async def read_projects(db: AsyncDatabase[Document]) -> list[Document]:
    """The first :data:`MAX_PROJECTS` projects by id."""
    return await db[PROJECTS].find({}, PROJECT_FIELDS, sort=[("_id", ASCENDING)],
                                   limit=MAX_PROJECTS).to_list()


async def read_project(db: AsyncDatabase[Document], project_id: str) -> Document | None:
    return await db[PROJECTS].find_one({"_id": project_id}, PROJECT_FIELDS)


async def latest_entries(update_log: UpdateLog, after: int | None, limit: int) -> list[Document]:
    """The newest ``limit`` log entries (after the seq ``after``), oldest first."""
    query = {} if after is None else {"_id": {"$gt": after}}
    documents = await update_log.entries.find(query, TIMELINE_FIELDS, sort=[("_id", DESCENDING)],
                                              limit=limit).to_list()
    documents.reverse()
    return documents


async def summarize_projects(db: AsyncDatabase[Document], update_log: UpdateLog,
                             projects: list[Document]) -> list[dict[str, Any]]:
    ids = [project["_id"] for project in projects]
    if not ids:
        return []
    cache_counts, (status_counts, posts), last_updates = await asyncio.gather(
        asyncio.gather(*(_count_by_project(db[content.collection], ids) for content in ContentType)),
        _system_posts(db, ids),
        _last_updates(update_log, ids),
    )
    summaries = []
    for project in projects:
        project_id = project["_id"]
        last = last_updates.get(project_id)
        summaries.append({
            "id": str(project_id),
            "name": str(project.get("name") or project_id),
            "vkGroupId": group_id(project),
            "counts": {content.value: counts.get(project_id, 0)
                       for content, counts in zip(ContentType, cache_counts, strict=True)},
            "systemPosts": {
                "counts": {status: status_counts.get((project_id, status), 0) for status in STATUSES},
                "total": sum(n for (pid, _), n in status_counts.items() if pid == project_id),
                "posts": posts.get(project_id, []),
            },
            "refreshStatus": _refresh_status(project.get("refresh_status")),
            "lastReconciledAt": iso(as_datetime(project.get("reconciled_at"))),
            "tokenRest": _token_rest(project.get("vk_token_rest")),
            "lastUpdate": last,
        })
    return summaries


async def _count_by_project(collection: AsyncCollection[Document], ids: list[Any]) -> dict[Any, int]:
    cursor = await collection.aggregate([
        {"$match": {"project_id": {"$in": ids}}},
        {"$group": {"_id": "$project_id", "n": {"$sum": 1}}},
    ])
    return {group["_id"]: int(group["n"]) async for group in cursor}


async def _system_posts(db: AsyncDatabase[Document], ids: list[Any]
                        ) -> tuple[dict[tuple[Any, str], int], dict[Any, list[dict[str, Any]]]]:
    """Counts per (project, status), and each project's first posts by publication date."""
    collection = db[SYSTEM_POSTS]
    counts_cursor = await collection.aggregate([
        {"$match": {"project_id": {"$in": ids}}},
        {"$group": {"_id": {"p": "$project_id", "s": "$status"}, "n": {"$sum": 1}}},
    ])
    counts = {(group["_id"].get("p"), str(group["_id"].get("s"))): int(group["n"])
              async for group in counts_cursor}
    posts_cursor = await collection.aggregate([
        {"$match": {"project_id": {"$in": ids}}},
        {"$sort": {"project_id": 1, "publication_date": 1, "_id": 1}},
        {"$group": {"_id": "$project_id", "posts": {"$firstN": {"n": POSTS_PER_PROJECT, "input": {
            "id": "$_id", "status": "$status", "publication_date": "$publication_date",
            "text": {"$cond": [{"$eq": [{"$type": "$text"}, "string"]},
                               {"$substrCP": ["$text", 0, TEXT_PREVIEW_CHARS + 1]}, ""]},
            "vk_post_id": "$vk_post_id", "error": "$error", "last_error": "$last_error",
            "attempts": "$attempts", "claimed_at": "$claimed_at",
            "published_at": "$published_at", "failed_at": "$failed_at",
        }}}}},
    ])
    posts = {group["_id"]: [_post_json(post) for post in group["posts"]]
             async for group in posts_cursor}
    return counts, posts


def _post_json(post: Document) -> dict[str, Any]:
    post_id = post.get("id")
    return {
        "id": str(post_id),
        "status": str(post.get("status")),
        "publicationDate": iso(as_datetime(post.get("publication_date"))),
        "text": text_preview(post.get("text")),
        "vkPostId": int_or_none(post.get("vk_post_id")),
        "error": safe_error(post.get("error")),
        "lastError": safe_error(post.get("last_error")),
        "attempts": int_or_none(post.get("attempts")) or 0,
        "claimedAt": iso(as_datetime(post.get("claimed_at"))),
        "publishedAt": iso(as_datetime(post.get("published_at"))),
        "failedAt": iso(as_datetime(post.get("failed_at"))),
        "createdAt": iso(post_id.generation_time) if isinstance(post_id, ObjectId) else None,
    }


async def _last_updates(update_log: UpdateLog, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """Each project's latest entry among the newest :data:`RECENT_UPDATES_WINDOW` ones."""
    cursor = await update_log.entries.aggregate([
        {"$sort": {"_id": -1}},
        {"$limit": RECENT_UPDATES_WINDOW},
        {"$match": {"project_id": {"$in": ids}}},
        {"$group": {"_id": "$project_id", "seq": {"$max": "$_id"}, "at": {"$max": "$created_at"}}},
    ])
    return {group["_id"]: {"seq": int(group["seq"]), "cursor": format_cursor(int(group["seq"])),
                           "recordedAt": iso(as_datetime(group.get("at")))}
            async for group in cursor}


def _token_rest(value: Any) -> dict[str, Any] | None:
    """The project's VK token resting after VK refused it (no fingerprint: never read)."""
    if not isinstance(value, dict):
        return None
    return {"code": int_or_none(value.get("code")), "error": safe_error(value.get("error")),
            "since": iso(as_datetime(value.get("since"))),
            "probeAt": iso(as_datetime(value.get("probe_at")))}


def _refresh_status(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    result: dict[str, Any] = {}
    for content in ContentType:
        status = value.get(content.value)
        if isinstance(status, dict):
            result[content.value] = {"ok": bool(status.get("ok")),
                                     "error": safe_error(status.get("error")),
                                     "at": iso(as_datetime(status.get("at"))),
                                     "tokenResting": bool(status.get("token_resting"))}
    return result


async def project_names(db: AsyncDatabase[Document], documents: list[Document]) -> dict[Any, str]:
    ids = list({document.get("project_id") for document in documents})
    if not ids:
        return {}
    cursor = db[PROJECTS].find({"_id": {"$in": ids}}, {"name": True})
    return {project["_id"]: str(project.get("name") or project["_id"]) async for project in cursor}


async def callbacks_taken(db: AsyncDatabase[Document], documents: list[Document]
                           ) -> dict[str, datetime]:
    """When the refresher took the callback behind each refresh (``processed_events``)."""
    ids = list({str(document.get("correlation_id")) for document in documents
                if document.get("reason") in {UpdateReason.REFRESH, UpdateReason.REFRESH_FAILED}})
    if not ids:
        return {}
    cursor = db[PROCESSED_EVENTS].find({"claimed_by": {"$in": ids}},
                                       {"claimed_by": True, "seen_at": True})
    taken: dict[str, datetime] = {}
    async for event in cursor:
        seen_at = as_datetime(event.get("seen_at"))
        key = str(event.get("claimed_by"))
        if seen_at is not None and (key not in taken or seen_at < taken[key]):
            taken[key] = seen_at
    return taken
