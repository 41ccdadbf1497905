"""Prometheus metrics of the notifier (served on its HTTP port's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CURSOR_POLLS = Counter(
    "notifier_cursor_polls_total",
    "getUpdates polls with a cursor, by where the answer came from: the in-memory head "
    "window (source=head) or MongoDB's update log (source=log)", ["source"])
STREAM_OVERFLOWS = Counter(
    "notifier_stream_overflows_total",
    "SSE streams cut off for falling a whole queue behind (they reconnect and replay)")
OPEN_STREAMS = Gauge("notifier_open_streams", "SSE streams open on this process")
POLL_SECONDS = Histogram(
    "notifier_poll_seconds",
    "Time to answer one valid getUpdates poll, by mode (legacy, start, cursor)", ["mode"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
