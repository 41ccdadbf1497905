"""A benchmark's figures: samples, their percentiles, the target each is held to, and results.

:func:`percentile` is :func:`statistics.quantiles` with ``method="inclusive"``: linear
interpolation between the closest ranks, at rank ``(n - 1) · p / 100`` (NumPy's default,
"linear"). The samples are taken as the whole population, so the smallest and largest
are the 0th and 100th percentiles; p99 of a short series lies between its two largest
samples, not beyond the largest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


def percentile(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (``p`` a whole number, 0 to 100); NaN for no values."""
    if not values:
        return math.nan
    if p == 0 or len(values) == 1:
        return float(min(values))
    if p == 100:
        return float(max(values))
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def distribution(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    return {"count": len(values),
            "p50": round(percentile(values, 50) * scale, 3),
            "p90": round(percentile(values, 90) * scale, 3),
            "p99": round(percentile(values, 99) * scale, 3),
            "max": round(max(values) * scale, 3) if values else math.nan}


@dataclass(frozen=True)
class Target:
    """``value <op> bound``, on the figure itself or on its ratio to the baseline."""

    op: Literal["<=", ">="]
    bound: float
    on: Literal["value", "ratio"] = "value"

    def met(self, value: float, ratio: float | None) -> bool:
        subject = ratio if self.on == "ratio" else value
        if subject is None or math.isnan(subject):
            return False
        return subject <= self.bound if self.op == "<=" else subject >= self.bound

    def describe(self) -> str:
        symbol = "≤" if self.op == "<=" else "≥"
        return f"ratio {symbol} {self.bound:g}" if self.on == "ratio" else f"{symbol} {self.bound:g}"


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    samples: list[float]
    baseline_label: str | None = None
    baseline_samples: list[float] | None = None
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def baseline_median(self) -> float | None:
        return median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        if base is None or base == 0 or math.isnan(base):
            return None
        return self.median / base

    @property
    def status(self) -> str:
        if self.target is None:
            return "-"
        return "met" if self.target.met(self.median, self.ratio) else "NOT MET"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label, "unit": self.unit, "median": _num(self.median),
            "min": _num(min(self.samples)) if self.samples else None,
            "max": _num(max(self.samples)) if self.samples else None,
            "samples": [_num(value) for value in self.samples],
            "ratio": _num(self.ratio) if self.ratio is not None else None,
            "target": None if self.target is None else {
                "op": self.target.op, "bound": self.target.bound, "on": self.target.on},
            "status": self.status,
        }
        if self.baseline_samples is not None:
            data["baseline"] = {
                "label": self.baseline_label, "median": _num(median(self.baseline_samples)),
                "min": _num(min(self.baseline_samples)), "max": _num(max(self.baseline_samples)),
                "samples": [_num(value) for value in self.baseline_samples]}
        if self.note:
            data["note"] = self.note
        return data


def _num(value: float) -> float:
    return round(value, 4) if not math.isnan(value) else value


@dataclass
class BenchResult:
    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    noise: dict[str, float] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "seconds": round(self.seconds, 1), "error": self.error,
                "machine": self.noise,
                "figures": {figure.key: figure.to_json() for figure in self.figures},
                "details": self.details}


def results_from_json(payload: Mapping[str, Any]) -> list[BenchResult]:
    """The results of a saved run (``latest.json``), to print its table again."""
    results = []
    for name, data in payload["benchmarks"].items():
        result = BenchResult(name, data["title"], seconds=data["seconds"], error=data["error"],
                             noise=data.get("machine") or {})
        for key, figure in data["figures"].items():
            target = figure.get("target")
            baseline = figure.get("baseline")
            result.add(Figure(
                key, figure["label"], figure["unit"], list(figure["samples"]),
                baseline["label"] if baseline else None,
                list(baseline["samples"]) if baseline else None,
                Target(target["op"], target["bound"], target["on"]) if target else None))
        results.append(result)
    return results

