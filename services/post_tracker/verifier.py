"""Step 2, verify: look at a project's wall once and settle its ``publishing`` posts.

One ``wall.get`` (filter ``owner``, the latest 20 or so posts) serves every
``publishing`` post of the project. Only when that page is full and a known id is not
on it (a backlog pushed it further down) are the missing ids looked up with one
``wall.getById``. Matching is :func:`~services.post_tracker.matching.match_posts`.

Found → the system post is deleted (verified). Not found and handed to VK more than
the verify timeout ago → ``possible_error``. Not found yet → left for the next cycle.
When the wall cannot be read (token revoked, VK down), posts past the timeout become
``possible_error`` too, with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.post_tracker import metrics
from services.post_tracker.announcer import Announcer
from services.post_tracker.decisions import Verdict, describe, verdict, wall_page_size
from services.post_tracker.matching import Match, Unverified, match_posts
from services.post_tracker.records import Project, SystemPost
from services.post_tracker.store import PostStore
from services.post_tracker.variables import substitute
from shared.messages import utc_now
from shared.vk import VkClient, VkError, WallFilter, WallPost

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Report:
    """What one look at a project's wall settled."""

    checked: int = 0
    verified: int = 0
    possible_errors: int = 0
    wall_read: bool = True


class Verifier:
    def __init__(self, store: PostStore, vk: VkClient, announcer: Announcer, *,
                 timeout_seconds: float, date_slack: timedelta, clock: Clock = utc_now) -> None:
        self._store = store
        self._vk = vk
        self._announcer = announcer
        self._timeout = timeout_seconds
        self._date_slack = date_slack
        self._clock = clock

    async def verify(self, project_id: str, project: Project | None) -> Report:
        posts = await self._store.publishing(project_id)
        if not posts:
            return Report()
        started = time.perf_counter()
        wall: list[WallPost] | None = None
        failure = "project not found" if project is None else project.problem
        if project is not None and failure is None:
            try:
                wall = await self._read_wall(project, posts)
            except VkError as exc:
                failure = describe(exc)
                log.warning("wall_read_failed", error=failure, code=exc.code)
        matches: dict[str, Match] = {}
        if wall is not None:
            matches = match_posts(await self._unverified(project_id, posts), wall,
                                  reserved_ids=await self._store.reserved_ids(project_id),
                                  date_slack=self._date_slack)
        now = self._clock()
        verified = possible = 0
        for post in posts:
            with structlog.contextvars.bound_contextvars(post_id=post.key,
                                                         correlation_id=post.correlation_id):
                match = matches.get(post.key)
                outcome = verdict(found=match is not None, since=post.published_since, now=now,
                                  timeout_seconds=self._timeout)
                if match is not None and outcome is Verdict.VERIFIED:
                    verified += await self._settle_verified(post, match)
                elif outcome is Verdict.TIMED_OUT:
                    reason = (f"not found on the wall within {self._timeout:g} s"
                              if failure is None else
                              f"not verified within {self._timeout:g} s: {failure}")
                    possible += await self._settle_possible_error(post, reason, now)
                else:
                    log.debug("post_not_on_wall_yet", vk_post_id=post.vk_post_id)
        metrics.CYCLE_SECONDS.labels(phase="verify").observe(time.perf_counter() - started)
        return Report(len(posts), verified, possible, wall is not None)

    async def _read_wall(self, project: Project, posts: Sequence[SystemPost]) -> list[WallPost]:
        count = wall_page_size(len(posts))
        page = await self._vk.wall_get(project.token, -project.group_id, WallFilter.OWNER,
                                       count=count)
        wall = list(page.items)
        if len(page.items) < count or page.count <= len(page.items):
            return wall  # the whole wall was seen: what is missing is not (visibly) there
        seen = {item.id for item in page.items}
        missing = [post.vk_post_id for post in posts
                   if post.vk_post_id is not None and post.vk_post_id not in seen]
        if missing:
            wall += await self._vk.wall_get_by_id(
                project.token, [(-project.group_id, post_id) for post_id in missing])
        return wall

    async def _unverified(self, project_id: str,
                          posts: Sequence[SystemPost]) -> list[Unverified]:
        variables: dict[str, str] | None = None
        result: list[Unverified] = []
        for post in posts:
            text = post.sent_text
            if text is None:  # set to publishing by someone else: best effort
                if variables is None:
                    variables = await self._store.variables(project_id)
                text = substitute(post.text, variables).text
            result.append(Unverified(post.key, post.vk_post_id, text, post.attachments,
                                     post.published_since))
        return result

    async def _settle_verified(self, post: SystemPost, match: Match) -> int:
        if not await self._store.delete_verified(post):
            return 0
        metrics.POSTS_VERIFIED.labels(way=match.way.value).inc()
        log.info("post_verified", way=match.way.value, vk_post_id=match.wall_post_id)
        self._announce(post)
        return 1

    async def _settle_possible_error(self, post: SystemPost, reason: str, now: datetime) -> int:
        if not await self._store.mark_possible_error(post, reason, now):
            return 0
        metrics.POSSIBLE_ERRORS.inc()
        log.warning("post_possible_error", error=reason, vk_post_id=post.vk_post_id)
        self._announce(post)
        return 1

    def _announce(self, post: SystemPost) -> None:
        self._announcer.announce(post.project_id, post.correlation_id or post.key)
