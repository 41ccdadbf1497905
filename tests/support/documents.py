"""Documents as the rest of the product writes them (see the README's data contract)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from shared.documents import PostStatus
from shared.mongo import GLOBAL_VARIABLES, PROJECTS, SYSTEM_POSTS, Document


async def insert_project(db: AsyncDatabase[Document], *, group_id: int,
                         token: str = "user-token", secret: str | None = None,
                         confirmation_code: str = "c0de1234", **extra: Any) -> str:
    project_id = str(extra.pop("_id", f"project-{uuid.uuid4().hex[:8]}"))
    await db[PROJECTS].insert_one({
        "_id": project_id, "name": f"Project {group_id}", "vk_group_id": group_id,
        "vk_confirmation_code": confirmation_code, "vk_callback_secret": secret,
        "vk_user_token": token, **extra,
    })
    return project_id


async def insert_post(db: AsyncDatabase[Document], project_id: str, text: str = "Hello", *,
                      at: datetime | None = None, attachments: list[str] | None = None,
                      status: PostStatus = PostStatus.PENDING, **extra: Any) -> ObjectId:
    """A system post as the product writes it (due now unless ``at``); ``extra`` adds the
    fields a tracker leaves on it."""
    document: Document = {
        "project_id": project_id, "text": text, "attachments": attachments or [],
        "publication_date": at or datetime.now(UTC), "status": status.value, "vk_post_id": None,
        "error": None, **extra,
    }
    result = await db[SYSTEM_POSTS].insert_one(document)
    assert isinstance(result.inserted_id, ObjectId)
    return result.inserted_id


async def insert_variable(db: AsyncDatabase[Document], name: str, value: str,
                          project_id: str | None = None) -> None:
    await db[GLOBAL_VARIABLES].insert_one({"name": name, "value": value, "project_id": project_id})


async def get_post(db: AsyncDatabase[Document], post_id: ObjectId) -> Document | None:
    return await db[SYSTEM_POSTS].find_one({"_id": post_id})
