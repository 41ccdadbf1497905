"""One community's wall: published, postponed (scheduled) and suggested posts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .posts import Post, PostType


class Wall:
    """Posts of one owner. Post ids are shared by all kinds and never reused, as on VK."""

    def __init__(self, owner_id: int) -> None:
        self.owner_id = owner_id
        self._posts: dict[int, Post] = {}
        self._last_id = 0

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def add(self, post: Post) -> Post:
        self._posts[post.id] = post
        return post

    def get(self, post_id: int) -> Post | None:
        return self._posts.get(post_id)

    def remove(self, post_id: int) -> Post | None:
        return self._posts.pop(post_id, None)

    def of_type(self, post_type: PostType) -> list[Post]:
        """Posts of one type: newest first; postponed ones soonest first, as VK lists them."""
        posts = [post for post in self._posts.values() if post.post_type is post_type]
        if post_type is PostType.POSTPONED:
            return sorted(posts, key=lambda post: (post.date, post.id))
        return sorted(posts, key=lambda post: (post.date, post.id), reverse=True)

    def published(self) -> list[Post]:
        return self.of_type(PostType.POST)

    def postponed(self) -> list[Post]:
        return self.of_type(PostType.POSTPONED)

    def suggests(self) -> list[Post]:
        return self.of_type(PostType.SUGGEST)

    def for_filter(self, wall_filter: str, now: float) -> list[Post]:
        """What ``wall.get`` lists for ``filter`` (the caller checked it is supported)."""
        posts: Iterable[Post]
        if wall_filter == "postponed":
            posts = self.postponed()
        elif wall_filter == "suggests":
            posts = self.suggests()
        elif wall_filter == "owner":
            posts = (post for post in self.published() if post.from_id == self.owner_id)
        elif wall_filter == "others":
            posts = (post for post in self.published() if post.from_id != self.owner_id)
        else:
            posts = self.published()
        return [post for post in posts if post.visible_at(now)]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Everything on the wall, hidden posts included: the ground truth for tests."""
        return {
            "published": [post.to_vk() for post in self.published()],
            "postponed": [post.to_vk() for post in self.postponed()],
            "suggests": [post.to_vk() for post in self.suggests()],
        }
