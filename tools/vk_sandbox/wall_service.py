"""Changes to walls and the Callback API events VK sends for them.

Every way of changing a wall (``wall.post``/``wall.delete``, the control API, a
scheduled post going live) goes through :class:`WallService`, so events are the same
whichever way a test makes the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

from .community import Community
from .delivery import CallbackDispatcher
from .posts import Post, PostType
from .state import NotFoundError, SandboxState

# The author of suggested posts and reposts when a test names none: some reader.
DEFAULT_READER_ID = 200


class WallService:
    def __init__(
        self,
        state: SandboxState,
        dispatcher: CallbackDispatcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._dispatcher = dispatcher
        self._clock = clock
        self._user_wall_last_ids: dict[int, int] = {}
        # Set whenever the set of postponed posts changes, to wake the publisher.
        self.schedule_changed = asyncio.Event()

    def create_post(
        self,
        community: Community,
        *,
        text: str,
        attachments: list[str] | None = None,
        publish_date: int | None = None,
        suggest: bool = False,
        from_id: int | None = None,
        created_by: int | None = None,
        hide_seconds: float | None = None,
    ) -> Post:
        """A published, postponed (``publish_date`` in the future) or suggested post.

        ``from_id`` defaults to the community itself (``from_group=1``) and, for a
        suggested post, to a reader.
        """
        now = self._clock()
        wall = community.wall
        if suggest:
            post_type, date = PostType.SUGGEST, int(now)
            author = from_id if from_id is not None else DEFAULT_READER_ID
        elif publish_date is not None and publish_date > now:
            post_type, date = PostType.POSTPONED, publish_date
            author = from_id if from_id is not None else community.owner_id
        else:
            post_type, date = PostType.POST, int(now)
            author = from_id if from_id is not None else community.owner_id
        post = wall.add(Post(
            id=wall.next_id(),
            owner_id=community.owner_id,
            from_id=author,
            date=date,
            text=text,
            post_type=post_type,
            attachments=list(attachments or []),
            created_by=created_by,
            hidden_until=-math.inf if hide_seconds is None else now + hide_seconds,
        ))
        if post_type is PostType.POSTPONED:
            self.schedule_changed.set()
            self._dispatcher.emit(community.group_id, "wall_schedule_post_new", post.to_vk())
        else:
            self._dispatcher.emit(community.group_id, "wall_post_new", post.to_vk())
        return post

    def create_repost(
        self, community: Community, *, text: str = "", from_id: int | None = None,
        original_id: int | None = None,
    ) -> dict[str, Any]:
        """A reader reposts a community post to their own wall: VK sends ``wall_repost``.

        Reposts the latest published post unless ``original_id`` names one. The repost
        lives on the reader's wall, so it is not on the community's.
        """
        wall = community.wall
        original = wall.get(original_id) if original_id is not None else next(
            iter(wall.published()), None)
        if original is None or original.post_type is not PostType.POST:
            raise NotFoundError(f"no published post to repost on the wall of {community.name}")
        original.reposts += 1
        reader = from_id if from_id is not None else DEFAULT_READER_ID
        post_id = self._user_wall_last_ids.get(reader, 0) + 1
        self._user_wall_last_ids[reader] = post_id
        repost = Post(
            id=post_id, owner_id=reader, from_id=reader, date=int(self._clock()), text=text,
            post_type=PostType.POST, copy_history=[original.to_vk()],
        ).to_vk()
        self._dispatcher.emit(community.group_id, "wall_repost", repost)
        return repost

    def delete_post(self, community: Community, post_id: int) -> Post:
        post = community.wall.remove(post_id)
        if post is None:
            raise NotFoundError(f"no post {post_id} on the wall of {community.name}")
        if post.post_type is PostType.POSTPONED:
            self.schedule_changed.set()
            self._dispatcher.emit(community.group_id, "wall_schedule_post_delete", post.to_vk())
        return post

    def publish_due(self) -> list[Post]:
        """Publish postponed posts whose time has come, each under a new post id."""
        now = self._clock()
        published: list[Post] = []
        for community in list(self._state.communities.values()):
            wall = community.wall
            for scheduled in wall.postponed():
                if scheduled.date > now:
                    break  # postponed() is soonest first
                wall.remove(scheduled.id)
                post = wall.add(Post(
                    id=wall.next_id(),
                    owner_id=scheduled.owner_id,
                    from_id=scheduled.from_id,
                    date=scheduled.date,
                    text=scheduled.text,
                    post_type=PostType.POST,
                    attachments=scheduled.attachments,
                    created_by=scheduled.created_by,
                    postponed_id=scheduled.id,
                ))
                published.append(post)
                self._dispatcher.emit(community.group_id, "wall_post_new", post.to_vk())
        return published

    def next_due(self) -> float | None:
        """When the soonest postponed post goes live, if any is waiting."""
        dates = [
            posts[0].date
            for community in self._state.communities.values()
            if (posts := community.wall.postponed())
        ]
        return min(dates, default=None)


async def publish_postponed_posts(walls: WallService, clock: Callable[[], float] = time.time
                                  ) -> None:
    """Background task: publish each postponed post when its time comes."""
    while True:
        walls.schedule_changed.clear()
        walls.publish_due()
        due = walls.next_due()
        timeout = None if due is None else max(0.0, due - clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(walls.schedule_changed.wait(), timeout)
