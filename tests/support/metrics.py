"""This process's Prometheus metrics, read by tests: how much a sample changed since a moment."""

from __future__ import annotations

from prometheus_client import REGISTRY

SampleKey = tuple[str, frozenset[tuple[str, str]]]


def _samples() -> dict[SampleKey, float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in REGISTRY.collect() for sample in family.samples}


class MetricsSince:
    """The registry's samples relative to when this object was made.

    Metrics are process-wide; tests run one at a time, so what changed since the test
    began is what the test did.
    """

    def __init__(self) -> None:
        self._start = _samples()

    def __call__(self, name: str, **labels: str) -> float:
        """How much the sample ``name{labels}`` grew (or shrank) since the start."""
        key = (name, frozenset(labels.items()))
        return _samples().get(key, 0.0) - self._start.get(key, 0.0)


def current(name: str, **labels: str) -> float:
    """The sample's value now (0 if it has none yet)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value
