"""What happens to a post after a failed ``wall.post``, and after a look at the wall. Pure.

Every ``wall.post`` call of one publication that may have posted — the VK client's own
retries, the tracker's retries after a back-off and its re-sends with the same ``guid`` —
spends one attempt of a single budget (``RetryRules.max_attempts``,
``TRACKER_PUBLISH_ATTEMPTS``, default 5), counted in the post's ``attempts``; never
client attempts × tracker attempts. The budget bounds the risk of duplicates from unknown
outcomes; a call VK refused before acting (6, 9, refused connection) carries none, so it
does not spend it: refusals have their own bound (below).

A failed ``wall.post`` is one of three things (:func:`decide_failure`):

* **Unknown outcome** (timeout, connection lost after sending, HTTP 5xx, a garbled
  answer, VK error 10, or anything that is not a VK error): the post may be on the
  wall. It stays ``publishing``; the next look at the wall finds it (by content), or,
  if it is not there, it is re-sent **with the same guid** (:func:`should_resend`), so
  VK answers the same post id instead of posting twice.
* **Rejected, try later** (VK errors 6 and 9, a refused connection: proof that nothing
  was posted): back to ``pending_publication`` with a back-off (``not_before``), the
  attempt budget untouched. Tries refused in a row are counted in the post's
  ``refusals``; the ``RetryRules.max_refusals``-th (default 10: with the 10-s back-off
  doubling to 300 s, about 25 minutes of refusals) turns it into ``error``. Processes
  sharing a token's rate (a busy refresher and a tracker) can be refused for a minute
  or more; this bound outlasts that and still stops hammering VK. Error 29 (the method's daily
  quota) goes back to pending too, with a much longer back-off, while the attempt
  budget lasts.
* **Rejected for good** (every other VK error: 5, 15, 27, 100, 210, 214, 219–224, ...):
  ``error`` with the code and VK's message (never the token).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.documents import BsonId, DocumentError, Project, SystemPost, id_label
from shared.retry import BackoffPolicy
from shared.vk import VkError, VkNetworkError, outcome_unknown

# VK rejected the call before doing anything: too many requests (6), flood control (9).
RETRY_LATER_CODES = frozenset({6, 9})
# The method's daily quota is used up: worth trying again, but hours later.
QUOTA_CODE = 29


@dataclass(frozen=True, slots=True)
class RetryRules:
    """How often and how patiently a publication is tried again."""

    # wall.post calls per publication that may have posted, whoever makes them (client,
    # tracker, re-sends).
    max_attempts: int = 5
    # Tracker tries refused in a row (6, 9, refused connection) before the post is error.
    max_refusals: int = 10
    # Re-sends with the same guid after an unknown outcome, and only this long after
    # the first send (VK states no window for guid; keep well within any it may have).
    max_resends: int = 3
    resend_window_seconds: float = 600.0
    backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_seconds=10, multiplier=2, max_seconds=300))
    quota_backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_seconds=1800, multiplier=2,
                                              max_seconds=6 * 3600))

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_refusals < 1:
            raise ValueError("max_attempts and max_refusals must be >= 1, got "
                             f"{self.max_attempts} and {self.max_refusals}")


@dataclass(frozen=True, slots=True)
class KeepPublishing:
    """Outcome unknown: leave the post ``publishing``; verification decides."""

    error: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Back to ``pending_publication`` until ``not_before``."""

    error: str
    code: int | None
    attempts: int
    not_before: datetime
    refusals: int = 0  # tries refused in a row so far, this one included


@dataclass(frozen=True, slots=True)
class Fail:
    """``error``: VK refused the post for good, or retries ran out."""

    error: str
    code: int | None
    attempts: int


FailureDecision = KeepPublishing | Retry | Fail


def describe(exc: BaseException) -> str:
    """A one-line, token-free description (VkError messages are redacted when built)."""
    if isinstance(exc, VkError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def refused_try_later(exc: BaseException) -> bool:
    """VK (or the network) refused the call before anything was done: 6, 9, refused."""
    return isinstance(exc, VkError) and (exc.code in RETRY_LATER_CODES or (
        isinstance(exc, VkNetworkError) and exc.code is None and not outcome_unknown(exc)))


def decide_failure(exc: BaseException, *, attempts: int, now: datetime, rules: RetryRules,
                   rng: random.Random | None = None, attempts_before: int | None = None,
                   refusals: int = 0) -> FailureDecision:
    """The post's next state after ``wall.post`` raised ``exc``.

    ``attempts`` is the number of ``wall.post`` calls made for the publication so far,
    this try's included; ``attempts_before`` (default ``attempts``) the number before
    this try, ``refusals`` the tries refused in a row before it. A try that ends refused
    made only refused calls (the client retries nothing else of a ``wall.post``), so it
    leaves the budget at ``attempts_before``.
    """
    error = describe(exc)
    if not isinstance(exc, VkError):
        return KeepPublishing(error)
    if outcome_unknown(exc):
        return KeepPublishing(error, exc.code)
    attempt = attempts
    if refused_try_later(exc):
        refused = refusals + 1
        spent = attempts if attempts_before is None else attempts_before
        if refused >= rules.max_refusals:
            return Fail(f"gave up after {refused} refused tries: {error}", exc.code, spent)
        delay = timedelta(seconds=rules.backoff.delay(refused, rng))
        return Retry(error, exc.code, spent, now + delay, refused)
    if exc.code == QUOTA_CODE:
        if attempt >= rules.max_attempts:
            return Fail(f"gave up after {attempt} attempts: {error}", exc.code, attempt)
        delay = timedelta(seconds=rules.quota_backoff.delay(attempt, rng))
        return Retry(error, exc.code, attempt, now + delay)
    return Fail(error, exc.code, attempt)


def publication_guid(post_id: BsonId, text: str, attachments: Sequence[str]) -> str:
    """``wall.post``'s ``guid`` for one publication: the same post with the same content.

    Re-sends of it carry the same guid, so VK answers the same post id and posts
    nothing new; an edited post (new text or attachments) is a new publication.
    """
    identity = f"{type(post_id).__name__}:{post_id!r}\n{text}\n{','.join(attachments)}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def should_resend(post: SystemPost, *, found: bool, wall_read: bool, now: datetime,
                  rules: RetryRules) -> bool:
    """Re-send ``post`` with its guid: its outcome was unknown and the wall, read since
    the claim, does not show it; within the re-send count, window and attempt budget."""
    if not post.outcome_unknown or post.vk_post_id is not None or found or not wall_read:
        return False
    if post.guid is None or post.sent_text is None or post.claimed_at is None:
        return False  # not sent by a tracker that sends guids: never re-sent blindly
    within = (now - post.claimed_at).total_seconds() <= rules.resend_window_seconds
    return (within and post.resends < rules.max_resends
            and post.attempts < rules.max_attempts)


ProjectRead = Project | DocumentError | None


def project_problem(project: ProjectRead, project_id: BsonId) -> str | None:
    """Why nothing can be posted for ``project_id`` (None: the project is usable)."""
    if project is None:
        return "project not found"
    if isinstance(project, DocumentError):
        return f"project {id_label(project_id)}: {project}"
    if project.problem is not None:
        return f"project {project.label}: {project.problem}"
    return None


def unknown_variables_error(names: Sequence[str]) -> str:
    return f"unknown variable(s): {', '.join(names)}"


class WallVerdict(StrEnum):
    VERIFIED = "verified"  # on the wall: delete the system post
    TIMED_OUT = "timed_out"  # not found for too long: possible_error
    WAIT = "wait"  # not found yet: look again next cycle


def verdict(*, found: bool, since: datetime, now: datetime, timeout_seconds: float) -> WallVerdict:
    """After one look at the wall: ``since`` is when the post was handed to VK."""
    if found:
        return WallVerdict.VERIFIED
    if (now - since).total_seconds() > timeout_seconds:
        return WallVerdict.TIMED_OUT
    return WallVerdict.WAIT


def wall_page_size(publishing: int, *, minimum: int = 20, maximum: int = 100) -> int:
    """How many latest wall posts to fetch to see ``publishing`` posts and some others."""
    return max(minimum, min(maximum, publishing + 5))


def lateness_seconds(publication_date: datetime, sent_at: datetime) -> float:
    """How late ``wall.post`` was called; never negative (a post is not sent early)."""
    return max(0.0, (sent_at - publication_date).total_seconds())
