"""The tracker's knobs: four from the settings, the rest sensible constants (tests shrink them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.post_tracker.decisions import RetryRules
from services.post_tracker.matching import DEFAULT_DATE_SLACK
from shared.settings import Settings


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    # The safety-net cycle: the longest the tracker sleeps, and how often a project's
    # ``publishing`` posts are looked for on its wall.
    interval_seconds: float = 50.0
    # Not found on the wall this long after being handed to VK → possible_error.
    verify_timeout_seconds: float = 300.0
    # Projects worked on at once by one tracker. Most of a project's time is spent
    # waiting for its token's rate limiter, so many run at once (backlog benchmark).
    max_parallel_projects: int = 128
    # While a backlog is sent, look at the wall after this many posts, so one wall.get
    # page still shows them all.
    verify_every_sent: int = 15
    # A project's lease (see leases.py); renewed every third of it while held.
    lease_seconds: float = 10.0
    # A project leased by another replica is looked at again after this long.
    busy_recheck_seconds: float = 1.0
    # VK's clock against ours, for "a wall post is not older than the claim" (way 2).
    date_slack: timedelta = DEFAULT_DATE_SLACK
    # Without a change stream: wake this often; try to reopen the stream this often.
    poll_fallback_seconds: float = 2.0
    stream_retry_seconds: float = 30.0
    # After a failed cycle (e.g. MongoDB unreachable), wait this long before the next.
    error_pause_seconds: float = 2.0
    # On stop: how long in-flight work (a VK call, its record) may take to finish.
    stop_grace_seconds: float = 15.0
    retry: RetryRules = field(default_factory=RetryRules)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackerOptions:
        return cls(interval_seconds=settings.tracker_interval_seconds,
                   verify_timeout_seconds=settings.tracker_verify_timeout_seconds,
                   max_parallel_projects=settings.tracker_max_parallel_projects,
                   lease_seconds=settings.tracker_lease_seconds,
                   stop_grace_seconds=settings.vk_timeout_seconds + 5.0,
                   retry=RetryRules(
                       max_attempts=settings.tracker_publish_attempts,
                       max_resends=settings.tracker_guid_max_resends,
                       resend_window_seconds=settings.tracker_guid_resend_window_seconds))
