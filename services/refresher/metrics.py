"""Prometheus metrics of the refresher."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("refresher_events_total", "Callback events consumed, by outcome",
                 ["outcome"])  # refreshed, coalesced, ignored, duplicate, unknown_project
REFRESHES = Counter("refresher_refreshes_total", "Full refreshes, by content type and outcome",
                    ["content_type", "outcome"])  # ok, failed, retry, stale, token_resting
REFRESHES_UNCHANGED = Counter("refresher_refreshes_unchanged_total",
                              "Refreshes that changed nothing and were not announced",
                              ["content_type"])
TOKEN_RESTS = Counter("refresher_token_rests_total",
                      "Projects whose VK token was refused for good and now rests")
TOKEN_PROBES = Counter("refresher_token_probes_total",
                       "VK calls made with a resting token to see whether it works again")
REFRESH_SECONDS = Histogram("refresher_refresh_seconds", "Duration of one full refresh",
                            ["content_type"])
# One series per project that has failed since the process started (only failing projects
# get one): which projects need an operator. kind: permanent (recorded on the project, not
# retried: token, access) or transient (VK still failing after the client's retries).
PROJECT_REFRESH_FAILURES = Counter(
    "refresher_project_refresh_failures_total",
    "Refreshes that failed, by project and kind (permanent, transient)", ["project_id", "kind"])
RECONCILED = Counter("refresher_reconcile_caches_total",
                     "Caches reconciliation refreshed or skipped (refreshed recently anyway)",
                     ["outcome"])  # requested, skipped_recent
OLDEST_CACHE_AGE = Gauge("refresher_oldest_cache_age_seconds",
                         "Age of the least recently refreshed cache, by content type",
                         ["content_type"])
