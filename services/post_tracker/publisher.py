"""Step 1, publish: claim a project's oldest due post and send it with ``wall.post``.

Order of writes, and what a crash at each point leaves:

1. the claim (``publishing``, ``claimed_by``, ``claimed_at``, ``sent_text``) — a crash
   now leaves a ``publishing`` post that was maybe not sent; it is never sent again by
   the tracker: verification finds it or times it out to ``possible_error``;
2. ``wall.post`` — the one call that changes VK, made once per claim;
3. the outcome: ``vk_post_id``, or the decision of
   :func:`~services.post_tracker.decisions.decide_failure`. This write is shielded
   from cancellation, so a stopping tracker finishes it.

Each change is then announced (:mod:`services.post_tracker.announcer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

import structlog

from services.post_tracker import metrics
from services.post_tracker.announcer import Announcer
from services.post_tracker.decisions import (
    Fail,
    KeepPublishing,
    Retry,
    RetryRules,
    decide_failure,
    lateness_seconds,
)
from services.post_tracker.records import Project, SystemPost
from services.post_tracker.store import PostStore
from services.post_tracker.variables import substitute
from shared.messages import utc_now
from shared.vk import VkClient

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


class Step(StrEnum):
    """What one :meth:`Publisher.publish_next` did."""

    IDLE = "idle"  # nothing due for the project
    LOST = "lost"  # another tracker took the post, or it changed; look again
    SENT = "sent"  # a post was claimed and handled (whatever VK answered)


def _code_label(code: int | None) -> str:
    return "none" if code is None else str(code)


class Publisher:
    def __init__(self, store: PostStore, vk: VkClient, announcer: Announcer, rules: RetryRules,
                 clock: Clock = utc_now) -> None:
        self._store = store
        self._vk = vk
        self._announcer = announcer
        self._rules = rules
        self._clock = clock

    async def publish_next(self, project_id: str, project: Project | None) -> Step:
        """Claim the project's oldest due post and send it."""
        now = self._clock()
        candidate = await self._store.next_candidate(project_id, now)
        if candidate is None:
            return Step.IDLE
        substitution = substitute(candidate.text, await self._store.variables(project_id))
        post = await self._store.claim(candidate, now=now, sent_text=substitution.text)
        if post is None:
            log.debug("claim_lost", post_id=candidate.key)
            return Step.LOST
        with structlog.contextvars.bound_contextvars(post_id=post.key,
                                                     correlation_id=post.correlation_id):
            log.info("post_claimed", publication_date=post.publication_date.isoformat(),
                     attempts=post.attempts)
            if substitution.unknown:
                log.warning("unknown_variables", names=list(substitution.unknown))
            await self._send(post, project, substitution.text)
        return Step.SENT

    async def _send(self, post: SystemPost, project: Project | None, text: str) -> None:
        if project is None or project.problem is not None:
            error = "project not found" if project is None else str(project.problem)
            await asyncio.shield(self._record_failure(post, Fail(error, None, post.attempts)))
            return
        sent_at = self._clock()
        lateness = lateness_seconds(post.publication_date, sent_at)
        metrics.PUBLISH_LATENESS.observe(lateness)
        try:
            vk_post_id = await self._vk.wall_post(project.token, project.group_id, text,
                                                  post.attachments)
        except asyncio.CancelledError:
            log.warning("publish_interrupted", note="left publishing for verification")
            raise
        except Exception as exc:
            decision = decide_failure(exc, attempts=post.attempts, now=self._clock(),
                                      rules=self._rules)
            await asyncio.shield(self._record_failure(post, decision))
        else:
            await asyncio.shield(self._record_success(post, vk_post_id, lateness))

    async def _record_success(self, post: SystemPost, vk_post_id: int, lateness: float) -> None:
        metrics.POSTS_PUBLISHED.inc()
        if not await self._store.record_published(post, vk_post_id, self._clock()):
            log.warning("post_changed_meanwhile", vk_post_id=vk_post_id, outcome="published")
            return
        log.info("post_published", vk_post_id=vk_post_id, lateness_seconds=round(lateness, 3))
        self._announce(post)

    async def _record_failure(self, post: SystemPost,
                              decision: Fail | Retry | KeepPublishing) -> None:
        if isinstance(decision, KeepPublishing):
            metrics.PUBLISH_ERRORS.labels(code=_code_label(decision.code), outcome="unknown").inc()
            await self._store.record_unknown(post, decision)
            log.warning("post_outcome_unknown", error=decision.error,
                        note="not sent again; verification decides")
            return
        if isinstance(decision, Retry):
            metrics.PUBLISH_ERRORS.labels(code=_code_label(decision.code), outcome="retry").inc()
            written = await self._store.record_retry(post, decision)
            if written:
                log.warning("post_retry_scheduled", error=decision.error, code=decision.code,
                            attempts=decision.attempts, not_before=decision.not_before.isoformat())
        else:
            metrics.PUBLISH_ERRORS.labels(code=_code_label(decision.code), outcome="error").inc()
            written = await self._store.record_failed(post, decision, self._clock())
            if written:
                log.warning("post_failed", error=decision.error, code=decision.code,
                            attempts=decision.attempts)
        if written:
            self._announce(post)
        else:
            log.warning("post_changed_meanwhile", outcome=type(decision).__name__.lower())

    def _announce(self, post: SystemPost) -> None:
        self._announcer.announce(post.project_id, post.correlation_id or post.key)
