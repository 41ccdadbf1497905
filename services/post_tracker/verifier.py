"""Step 2, verify: look at a project's wall once and settle its ``publishing`` posts.

A look reads the community's wall (``wall.get``, filter ``owner``) newest first, page
by page (``offset``), until it reaches posts older than the earliest claim among the
project's ``publishing`` posts — a pinned post, shown first whatever its date, does
not end it — or ``max_pages`` pages. Known ids still missing after that are looked up
with one ``wall.getById``. Matching is :func:`~services.post_tracker.matching.match_posts`.

Found → the system post is deleted (verified). Not found and handed to VK more than
the verify timeout ago → ``possible_error`` with the reason: ``not found on the wall
within … s`` when the wall was read (at least once since the claim: ``wall_read_at``),
``not verified: wall unreadable: <VK's error>`` when it could not be read during the
whole window (token revoked, VK down). Not found yet → left for the next
look; if its ``wall.post`` outcome was unknown, it is reported for a re-send with the
same guid (:func:`~services.post_tracker.decisions.should_resend`).

A ``publishing`` document that cannot be read becomes ``possible_error`` with the field
at fault; nothing a look meets (an odd wall item, a VK failure) escapes the verdicts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from services.post_tracker import metrics
from services.post_tracker.announcer import Announcer
from services.post_tracker.decisions import (
    ProjectRead,
    RetryRules,
    WallVerdict,
    describe,
    project_problem,
    should_resend,
    verdict,
    wall_page_size,
)
from services.post_tracker.matching import Match, Unverified, match_posts
from services.post_tracker.store import PostStore, Unusable
from services.post_tracker.variables import substitute
from shared.clock import WallClock, utc_now
from shared.documents import BsonId, Project, SystemPost, id_label
from shared.vk import VkClient, WallFilter, WallPost

log = structlog.get_logger(__name__)

# Pages of wall.get one look reads at most (a backlog of this many posts is seen).
MAX_PAGES = 5


@dataclass(frozen=True, slots=True)
class Report:
    """What one look at a project's wall settled, and what to send again."""

    checked: int = 0
    verified: int = 0
    possible_errors: int = 0
    wall_read: bool = True
    to_resend: tuple[SystemPost, ...] = field(default=())


def reached(items: Sequence[WallPost], since: datetime) -> bool:
    """Whether a page (newest first) reached posts older than ``since``; pinned ones,
    shown first whatever their date, do not count."""
    return any(item.date < since for item in items if not item.is_pinned)


class Verifier:
    def __init__(self, store: PostStore, vk: VkClient, announcer: Announcer, *,
                 timeout_seconds: float, date_slack: timedelta, rules: RetryRules | None = None,
                 clock: WallClock = utc_now, max_pages: int = MAX_PAGES) -> None:
        self._store = store
        self._vk = vk
        self._announcer = announcer
        self._timeout = timeout_seconds
        self._date_slack = date_slack
        self._rules = rules or RetryRules()
        self._clock = clock
        self._max_pages = max_pages

    async def verify(self, project_id: BsonId, project: ProjectRead) -> Report:
        found = await self._store.publishing(project_id)
        if not found:
            return Report()
        started = time.perf_counter()
        posts = [post for post in found if isinstance(post, SystemPost)]
        for unusable in (post for post in found if isinstance(post, Unusable)):
            await self._settle_possible_error(unusable, f"not verified: {unusable.reason}",
                                              self._clock())
        wall: list[WallPost] | None = None
        failure = project_problem(project, project_id)
        if isinstance(project, Project) and failure is None and posts:
            try:
                wall = await self._read_wall(project, posts)
            except Exception as exc:
                failure = f"wall unreadable: {describe(exc)}"
                log.warning("wall_read_failed", error=failure, code=getattr(exc, "code", None))
        matches: dict[str, Match] = {}
        if wall is not None and isinstance(project, Project):
            matches = match_posts(await self._unverified(project_id, posts), wall,
                                  owner_id=-project.group_id,
                                  reserved_ids=await self._store.reserved_ids(project_id),
                                  date_slack=self._date_slack)
        now = self._clock()
        verified = possible = 0
        to_resend: list[SystemPost] = []
        for post in posts:
            with structlog.contextvars.bound_contextvars(post_id=post.key,
                                                         correlation_id=post.correlation_id):
                match = matches.get(post.key)
                outcome = verdict(found=match is not None, since=post.published_since, now=now,
                                  timeout_seconds=self._timeout)
                if match is not None and outcome is WallVerdict.VERIFIED:
                    verified += await self._settle_verified(post, match)
                elif outcome is WallVerdict.TIMED_OUT:
                    possible += await self._settle_possible_error(
                        post, self._timed_out_reason(post, failure), now)
                elif should_resend(post, found=False, wall_read=wall is not None, now=now,
                                   rules=self._rules):
                    to_resend.append(post)
                else:
                    log.debug("post_not_on_wall_yet", vk_post_id=post.vk_post_id)
        if wall is not None:
            await self._store.mark_wall_read(
                [post for post in posts if post.key not in matches], now)
        metrics.CYCLE_SECONDS.labels(phase="verify").observe(time.perf_counter() - started)
        return Report(len(found), verified, possible, wall is not None, tuple(to_resend))

    def _timed_out_reason(self, post: SystemPost, failure: str | None) -> str:
        """"not found" if the wall was read (now, or since the claim); else why it was not."""
        not_found = f"not found on the wall within {self._timeout:g} s"
        if failure is None:
            return not_found
        if post.wall_read_at is not None and post.wall_read_at >= post.published_since:
            return f"{not_found} (the last look failed: {failure})"
        return f"not verified: {failure}"

    async def _read_wall(self, project: Project, posts: Sequence[SystemPost]) -> list[WallPost]:
        count = wall_page_size(len(posts))
        since = min(post.published_since for post in posts) - self._date_slack
        wall: list[WallPost] = []
        offset = 0
        for _ in range(self._max_pages):
            page = await self._vk.wall_get(project.token, -project.group_id, WallFilter.OWNER,
                                           offset=offset, count=count)
            wall += page.items
            offset += count
            if len(page.items) < count or offset >= page.count or reached(page.items, since):
                break
        seen = {item.id for item in wall}
        missing = [post.vk_post_id for post in posts
                   if post.vk_post_id is not None and post.vk_post_id not in seen]
        if missing:
            wall += await self._vk.wall_get_by_id(
                project.token, [(-project.group_id, post_id) for post_id in missing])
        return wall

    async def _unverified(self, project_id: BsonId,
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
        self._announce(post.project_label, post.correlation_id or post.key)
        return 1

    async def _settle_possible_error(self, post: SystemPost | Unusable, reason: str,
                                     now: datetime) -> int:
        if not await self._store.mark_possible_error(post, reason, now):
            return 0
        metrics.POSSIBLE_ERRORS.inc()
        if isinstance(post, SystemPost):
            log.warning("post_possible_error", error=reason, vk_post_id=post.vk_post_id)
            self._announce(post.project_label, post.correlation_id or post.key)
        else:
            log.warning("post_possible_error", error=reason, post_id=post.key)
            self._announce(id_label(post.project_id), post.key)
        return 1

    def _announce(self, project_label: str, correlation_id: str) -> None:
        self._announcer.announce(project_label, correlation_id)
