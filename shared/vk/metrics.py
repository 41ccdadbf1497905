"""Prometheus metrics of VK calls, shared by every service that calls VK."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CALLS = Counter("vk_api_calls_total", "VK API requests, by method and outcome "
                "(ok, a VK error code, http_<status>, network, unknown_outcome, malformed)",
                ["method", "outcome"])
CALL_SECONDS = Histogram("vk_api_call_seconds", "Duration of one VK API request", ["method"],
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
