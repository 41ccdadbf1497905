"""What a change stream is doing on the server, seen from a test."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document


async def awaiting_get_more(db: AsyncDatabase[Document], collection: str) -> bool:
    """A ``getMore`` on ``collection`` is in progress on the server."""
    cursor = await db.client.admin.aggregate([
        {"$currentOp": {"allUsers": True, "idleConnections": False}},
        {"$match": {"ns": f"{db.name}.{collection}", "command.getMore": {"$exists": True}}},
    ])
    return bool(await cursor.to_list())
