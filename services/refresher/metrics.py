"""Prometheus metrics of the refresher."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter("refresher_events_total", "Callback events consumed, by outcome",
                 ["outcome"])  # refreshed, coalesced, ignored, duplicate, unknown_project
REFRESHES = Counter("refresher_refreshes_total", "Full refreshes, by content type and outcome",
                    ["content_type", "outcome"])  # ok, failed, stale
REFRESH_SECONDS = Histogram("refresher_refresh_seconds", "Duration of one full refresh",
                            ["content_type"])
# One series per project that has failed since the process started (only failing projects
# get one): which projects need an operator. kind: permanent (recorded on the project, not
# retried: token, access) or transient (VK still failing after the client's retries).
PROJECT_REFRESH_FAILURES = Counter(
    "refresher_project_refresh_failures_total",
    "Refreshes that failed, by project and kind (permanent, transient)", ["project_id", "kind"])
