"""Step 1, publish: claim a project's oldest due post and send it with ``wall.post``.

Before the claim, a post that cannot be sent is set to ``error`` with the reason, once,
without calling VK (:meth:`~services.post_tracker.store.PostStore.reject`): its
document is unusable (the field and the type found are named), its project is missing
or unusable, or its text names a variable that does not exist.

Order of writes, and what a crash at each point leaves:

1. the claim (``publishing``, ``claimed_by``, ``claimed_at``, ``sent_text``, ``guid``),
   announced at once so the dashboard shows "publishing" — a crash now leaves a
   ``publishing`` post that was maybe not sent: verification finds it on the wall or,
   once its outcome is known to be unknown, re-sends it with the same guid;
2. ``wall.post`` with the post's ``guid``, spending from the publication's attempt
   budget (the VK client's own retries included);
3. the outcome: ``vk_post_id``, or the decision of
   :func:`~services.post_tracker.decisions.decide_failure`. This write is shielded
   from cancellation, so a stopping tracker finishes it.

:meth:`Publisher.resend` sends a ``publishing`` post again, with the same guid, when a
look at the wall did not find it after an unknown outcome.

Each change is then announced (:mod:`services.post_tracker.announcer`).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

import structlog

from services.post_tracker import metrics
from services.post_tracker.announcer import Announcer
from services.post_tracker.decisions import (
    Fail,
    KeepPublishing,
    ProjectRead,
    Retry,
    RetryRules,
    decide_failure,
    describe,
    lateness_seconds,
    project_problem,
    publication_guid,
    refused_try_later,
    unknown_variables_error,
)
from services.post_tracker.store import PostStore, Unusable
from services.post_tracker.variables import substitute
from shared.clock import WallClock, utc_now
from shared.documents import BsonId, Project, SystemPost, id_label, is_usable_id
from shared.retry import AttemptBudget
from shared.vk import VkClient

log = structlog.get_logger(__name__)



class PublishStep(StrEnum):
    """What one :meth:`Publisher.publish_next` did."""

    IDLE = "idle"  # nothing due for the project
    LOST = "lost"  # another tracker took the post, or it changed; look again
    REJECTED = "rejected"  # a post that cannot be sent was set to error
    SENT = "sent"  # a post was claimed and handled (whatever VK answered)


def _code_label(code: int | None) -> str:
    return "none" if code is None else str(code)


class Publisher:
    def __init__(self, store: PostStore, vk: VkClient, announcer: Announcer, rules: RetryRules,
                 clock: WallClock = utc_now) -> None:
        self._store = store
        self._vk = vk
        self._announcer = announcer
        self._rules = rules
        self._clock = clock

    async def publish_next(self, project_id: BsonId, project: ProjectRead) -> PublishStep:
        """Claim the project's oldest due post and send it (or reject it)."""
        now = self._clock()
        candidate = await self._store.next_candidate(project_id, now)
        if candidate is None:
            return PublishStep.IDLE
        if isinstance(candidate, Unusable):
            return await self.reject(candidate, candidate.reason)
        if (problem := project_problem(project, project_id)) is not None:
            return await self.reject(candidate, problem)
        substitution = substitute(candidate.text, await self._store.variables(project_id))
        if substitution.unknown:
            return await self.reject(candidate, unknown_variables_error(substitution.unknown),
                                     fence_text=True)
        guid = publication_guid(candidate.id, substitution.text, candidate.attachments)
        post = await self._store.claim(candidate, now=now, sent_text=substitution.text,
                                       guid=guid)
        if post is None:
            log.debug("claim_lost", post_id=candidate.key)
            return PublishStep.LOST
        assert isinstance(project, Project)
        with structlog.contextvars.bound_contextvars(post_id=post.key,
                                                     correlation_id=post.correlation_id):
            log.info("post_claimed", publication_date=post.publication_date.isoformat(),
                     attempts=post.attempts)
            self._announce(post)
            await self._send(post, project)
        return PublishStep.SENT

    async def reject(self, post: SystemPost | Unusable, reason: str, *,
                     fence_text: bool = False) -> PublishStep:
        """A pending post that cannot be sent → ``error`` with ``reason``; announced."""
        text = post.stored_text if isinstance(post, SystemPost) else None
        if not await self._store.reject(post.id, reason, self._clock(), text=text,
                                        fence_text=fence_text):
            return PublishStep.LOST
        metrics.PUBLISH_ERRORS.labels(code="none", outcome="rejected").inc()
        log.warning("post_rejected", post_id=post.key, error=reason)
        if isinstance(post, SystemPost):
            self._announce(post)
        elif is_usable_id(post.project_id):
            self._announcer.announce(id_label(post.project_id), post.key)
        return PublishStep.REJECTED

    async def _send(self, post: SystemPost, project: Project) -> None:
        sent_at = self._clock()
        lateness = lateness_seconds(post.publication_date, sent_at)
        metrics.PUBLISH_LATENESS.observe(lateness)
        budget = AttemptBudget(self._rules.max_attempts, min(post.attempts,
                                                             self._rules.max_attempts - 1))
        try:
            vk_post_id = await self._wall_post(post, project, budget)
        except asyncio.CancelledError:
            log.warning("publish_interrupted", note="left publishing for verification")
            raise
        except Exception as exc:
            decision = decide_failure(exc, attempts=budget.used, now=self._clock(),
                                      rules=self._rules, attempts_before=post.attempts,
                                      refusals=post.refusals)
            await asyncio.shield(self._record_failure(post, decision, budget.used))
        else:
            await asyncio.shield(self._record_success(post, vk_post_id, budget.used,
                                                      lateness=lateness))

    async def resend(self, post: SystemPost, project: Project) -> None:
        """Send ``post`` again with its guid: a look at the wall did not find it."""
        budget = AttemptBudget(self._rules.max_attempts, post.attempts)
        with structlog.contextvars.bound_contextvars(post_id=post.key,
                                                     correlation_id=post.correlation_id):
            log.info("post_resent_with_guid", resends=post.resends + 1, attempts=post.attempts)
            metrics.RESENDS.inc()
            try:
                vk_post_id = await self._wall_post(post, project, budget)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                decision = decide_failure(exc, attempts=budget.used, now=self._clock(),
                                          rules=self._rules)
                refused = refused_try_later(exc)
                if refused or isinstance(decision, Retry):
                    # Refused for now (6, 9, 29): still not on the wall; the next look decides.
                    decision = KeepPublishing(describe(exc), getattr(exc, "code", None))
                # Calls refused before VK acted (6, 9) spend nothing of the budget.
                attempts = post.attempts if refused else budget.used
                await asyncio.shield(self._record_failure(post, decision, attempts,
                                                          resent=True))
            else:
                await asyncio.shield(self._record_success(post, vk_post_id, budget.used,
                                                          resent=True))

    async def _wall_post(self, post: SystemPost, project: Project, budget: AttemptBudget) -> int:
        assert post.sent_text is not None
        return await self._vk.wall_post(project.token, project.group_id, post.sent_text,
                                        post.attachments, guid=post.guid, budget=budget)

    async def _record_success(self, post: SystemPost, vk_post_id: int, attempts: int, *,
                              lateness: float | None = None, resent: bool = False) -> None:
        metrics.POSTS_PUBLISHED.inc()
        if not await self._store.record_published(post, vk_post_id, self._clock(),
                                                  attempts=attempts, resent=resent):
            log.warning("post_changed_meanwhile", vk_post_id=vk_post_id, outcome="published")
            return
        log.info("post_published", vk_post_id=vk_post_id, resent=resent,
                 lateness_seconds=None if lateness is None else round(lateness, 3))
        self._announce(post)

    async def _record_failure(self, post: SystemPost, decision: Fail | Retry | KeepPublishing,
                              attempts: int, *, resent: bool = False) -> None:
        if isinstance(decision, KeepPublishing):
            metrics.PUBLISH_ERRORS.labels(code=_code_label(decision.code), outcome="unknown").inc()
            await self._store.record_unknown(post, decision, attempts=attempts, resent=resent)
            log.warning("post_outcome_unknown", error=decision.error,
                        note="the next look at the wall finds it or re-sends it (same guid)")
            return
        if isinstance(decision, Retry):
            metrics.PUBLISH_ERRORS.labels(code=_code_label(decision.code), outcome="retry").inc()
            written = await self._store.record_retry(post, decision)
            if written:
                log.warning("post_retry_scheduled", error=decision.error, code=decision.code,
                            attempts=decision.attempts, refusals=decision.refusals,
                            not_before=decision.not_before.isoformat())
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
        self._announcer.announce(post.project_label, post.correlation_id or post.key)
