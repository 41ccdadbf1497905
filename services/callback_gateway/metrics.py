"""Prometheus metrics of the gateway."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

# Event types are labels only when known, so a sender cannot blow up cardinality.
KNOWN_TYPES = frozenset({
    "confirmation", "wall_post_new", "wall_repost", "wall_schedule_post_new",
    "wall_schedule_post_delete", "postponed_new", "postponed_delete",
})

CALLBACKS = Counter(
    "gateway_callbacks_total", "Callbacks received, by event type and outcome",
    ["type", "outcome"],
)
# Per community: only known communities get a 403, so the label is bounded by the projects.
BAD_SECRETS = Counter(
    "gateway_bad_secrets_total",
    "Callbacks refused (403) for their secret, by community, and whether MongoDB was read "
    "to refuse it (checked=false: answered from the gateway's cache of refusals)",
    ["group_id", "checked"],
)
ACK_SECONDS = Histogram(
    "gateway_callback_ack_seconds", "Time from request to answer for accepted events",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
# Mean events per batch (per broker confirm) = rate(events) / rate(batches).
BATCHES = Counter("gateway_batches", "Batches published (one broker confirm each)")
BATCHED_EVENTS = Counter("gateway_batched_events", "Events in the batches published")


def type_label(event_type: str | None) -> str:
    return event_type if event_type in KNOWN_TYPES else "other"


@cache  # bounded: known types × outcomes
def _counter(label: str, outcome: str) -> Counter:
    return CALLBACKS.labels(type=label, outcome=outcome)


def count(event_type: str | None, outcome: str) -> None:
    _counter(type_label(event_type), outcome).inc()


def count_bad_secret(group_id: int, *, checked: bool) -> None:
    BAD_SECRETS.labels(group_id=str(group_id), checked="true" if checked else "false").inc()
