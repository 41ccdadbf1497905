"""Prometheus metrics of the post tracker (served on the health side port's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POSTS_PUBLISHED = Counter(
    "post_tracker_posts_published_total", "wall.post calls that returned a post id")
PUBLISH_ERRORS = Counter(
    "post_tracker_publish_errors_total",
    "Failed wall.post calls, by VK error code ('none' when VK gave none) and what followed",
    ["code", "outcome"])  # outcome: error, retry, unknown, rejected (never sent)
POSTS_VERIFIED = Counter(
    "post_tracker_posts_verified_total", "System posts found on the wall and deleted, by way",
    ["way"])  # id (way 1), content (way 2)
POSSIBLE_ERRORS = Counter(
    "post_tracker_possible_errors_total", "System posts not found on the wall in time")
ANNOUNCE_FAILURES = Counter(
    "post_tracker_announce_failures_total", "ProjectUpdated messages given up on")
PUBLISH_LATENESS = Histogram(
    "post_tracker_publish_lateness_seconds",
    "now - publication_date when wall.post is called",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600))
CYCLE_SECONDS = Histogram(
    "post_tracker_cycle_seconds",
    "Duration of one scheduling cycle (phase=schedule) or one project's verification "
    "(phase=verify)", ["phase"])
SYSTEM_POSTS = Gauge(
    "post_tracker_system_posts",
    "System posts in MongoDB by status (other: a status the tracker does not know), counted "
    "once per TRACKER_INTERVAL_SECONDS; every tracker replica reports the same numbers",
    ["status"])
RESENDS = Counter(
    "post_tracker_resends_total",
    "wall.post sent again with the same guid after an unknown outcome (not found on the wall)")
