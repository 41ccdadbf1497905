"""Finding the project a callback belongs to, with a short-lived cache for the hot path.

Only hits are cached: a project created a moment ago is found on the next
callback (a miss always asks MongoDB), while a burst for a known community costs
one query per ``ttl`` seconds. A secret that does not match the cached one is
checked once more against MongoDB, so a rotated secret works at once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cachetools import TTLCache
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import Document


@dataclass(frozen=True, slots=True)
class ProjectKeys:
    """What the gateway needs of a project."""

    project_id: str
    confirmation_code: str
    callback_secret: str | None

    def accepts_secret(self, secret: str | None) -> bool:
        """True when no secret is configured, or the given one matches (constant time)."""
        if not self.callback_secret:
            return True
        # compare_digest on equal-type bytes takes time independent of the matching prefix.
        return hmac.compare_digest((secret or "").encode(), self.callback_secret.encode())


class ProjectDirectory:
    def __init__(self, projects: AsyncCollection[Document], ttl_seconds: float,
                 max_entries: int = 100_000) -> None:
        self._projects = projects
        self._cache: TTLCache[int, ProjectKeys] | None = (
            TTLCache(maxsize=max_entries, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    async def find(self, group_id: int, *, fresh: bool = False) -> ProjectKeys | None:
        """The project's keys; ``fresh`` skips the cache (e.g. a secret that just changed)."""
        if not fresh and self._cache is not None and (cached := self._cache.get(group_id)):
            return cached
        document = await self._projects.find_one(
            {"vk_group_id": group_id},
            projection={"_id": 1, "vk_confirmation_code": 1, "vk_callback_secret": 1},
        )
        if document is None:
            return None
        keys = ProjectKeys(
            project_id=str(document["_id"]),
            confirmation_code=str(document.get("vk_confirmation_code") or ""),
            callback_secret=document.get("vk_callback_secret") or None,
        )
        if self._cache is not None:
            self._cache[group_id] = keys
        return keys
