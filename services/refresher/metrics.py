"""Prometheus metrics of the refresher."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter("refresher_events_total", "Callback events consumed, by outcome",
                 ["outcome"])  # refreshed, coalesced, ignored, duplicate, unknown_project
REFRESHES = Counter("refresher_refreshes_total", "Full refreshes, by content type and outcome",
                    ["content_type", "outcome"])  # ok, failed, stale
REFRESH_SECONDS = Histogram("refresher_refresh_seconds", "Duration of one full refresh",
                            ["content_type"])
