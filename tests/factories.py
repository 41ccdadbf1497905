"""Documents as the rest of the product writes them (see the README's data contract)."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROJECTS, Document


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
