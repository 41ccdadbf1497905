"""What each service should export on ``/metrics``, and the naming rules every metric follows."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator

from prometheus_client.metrics import MetricWrapperBase

from tools.processes import ROOT

# The metrics modules each service imports (the VK client's are shared by those calling VK).
METRICS_MODULES: dict[str, tuple[str, ...]] = {
    "callback_gateway": ("services.callback_gateway.metrics",),
    "update_notifier": ("services.update_notifier.metrics",),
    "refresher": ("services.refresher.metrics", "shared.vk.metrics"),
    "post_tracker": ("services.post_tracker.metrics", "shared.vk.metrics"),
}
# Exported by prometheus_client itself in every process.
DEFAULT_FAMILIES = frozenset({("process_cpu_seconds", "counter"), ("python_info", "gauge")})
OWNED_PREFIXES = ("gateway_", "notifier_", "refresher_", "post_tracker_", "vk_api_",
                  "backbone_", "process_", "python_")  # backbone_: shared/health.py
BASE_UNITS = ("_seconds", "_bytes")
NOT_BASE_UNITS = re.compile(r"_(ms|milliseconds|microseconds|minutes|hours|kb|mb|kilobytes|megabytes)"
                            r"(_total)?$")
NAME = re.compile(r"[a-z][a-z0-9_]*")


def metrics_module_files() -> set[str]:
    """Every metrics module in the code base, as a dotted module name."""
    files = [*ROOT.glob("services/*/metrics.py"), *ROOT.glob("shared/**/metrics.py")]
    return {".".join(path.relative_to(ROOT).with_suffix("").parts) for path in files}


def declared_families(modules: Iterable[str]) -> set[tuple[str, str]]:
    """(name, type) of every metric the modules define, as the text parser names families."""
    families: set[tuple[str, str]] = set()
    for module_name in modules:
        module = importlib.import_module(module_name)
        for collector in vars(module).values():
            if isinstance(collector, MetricWrapperBase):
                families.update((metric.name, metric.type) for metric in collector.describe())
    return families


def exposed_types(exposition: str) -> Iterator[tuple[str, str]]:
    """(name, type) from the ``# TYPE`` lines of Prometheus text, names exactly as exposed."""
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            yield name, kind


def naming_problems(exposition: str) -> list[str]:
    """Each way an exposed metric breaks the naming conventions, one line each.

    Counters end in ``_total``; histograms and summaries are measured in a base unit
    (``_seconds``, ``_bytes``); other types never end in ``_total``; no name carries a
    scaled unit (``_ms``…); every name is snake_case and starts with its owner's prefix.
    """
    problems = []
    for name, kind in exposed_types(exposition):
        if not NAME.fullmatch(name):
            problems.append(f"{name}: not snake_case")
        if not name.startswith(OWNED_PREFIXES):
            problems.append(f"{name}: no owner prefix ({', '.join(OWNED_PREFIXES)})")
        if NOT_BASE_UNITS.search(name):
            problems.append(f"{name}: a scaled unit; use seconds or bytes")
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: a counter not ending in _total")
        if kind in {"histogram", "summary"} and not name.endswith(BASE_UNITS):
            problems.append(f"{name}: a {kind} not in a base unit ({', '.join(BASE_UNITS)})")
        if kind not in {"counter"} and name.endswith("_total"):
            problems.append(f"{name}: a {kind} ending in _total (reserved for counters)")
    return problems
