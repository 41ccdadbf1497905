"""The PromQL of deploy/observability/: the queries of the rules and the dashboard, and the
metric names and selectors in them (parsed by ``promql_parser``, not by pattern)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = OBSERVABILITY / "alerts.yml"
RULE_TESTS = OBSERVABILITY / "alerts.test.yml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"

# Grafana replaces its variables before the query reaches Prometheus; so do we.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


@dataclass(frozen=True, slots=True)
class Selector:
    """One series selector of a query: the metric name and its label matchers."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op: = != =~ !~, value)

    def selects(self, labels: dict[str, str]) -> bool:
        """Whether a series with these labels (its own name aside) is selected."""
        return all(_matches(labels.get(label, ""), op, value)
                   for label, op, value in self.matchers)


# MatchOp values are not hashable; their names are.
_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def _matches(actual: str, op: str, value: str) -> bool:
    if op in {"=~", "!~"}:
        found = re.fullmatch(value, actual) is not None  # Prometheus anchors its regexes
        return found if op == "=~" else not found
    return (actual == value) if op == "=" else (actual != value)


def selectors(query: str) -> list[Selector]:
    """Every series selector of a PromQL query (Grafana variables replaced first)."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    found: list[Selector] = []
    _walk(promql_parser.parse(query), found)
    return found


def _walk(node: Any, found: list[Selector]) -> None:
    match node:
        case promql_parser.VectorSelector():
            matchers = tuple((m.name, _OPS[str(m.op)], m.value) for m in node.matchers.matchers)
            name = node.name or next((value for label, op, value in matchers
                                      if label == "__name__" and op == "="), None)
            if name is None:
                raise ValueError(f"a selector without a metric name: {node}")
            found.append(Selector(name, tuple(m for m in matchers if m[0] != "__name__")))
        case promql_parser.MatrixSelector():
            _walk(node.vector_selector, found)
        case promql_parser.AggregateExpr():
            _walk(node.expr, found)
            _walk(node.param, found)
        case promql_parser.Call():
            for argument in node.args:
                _walk(argument, found)
        case promql_parser.BinaryExpr():
            _walk(node.lhs, found)
            _walk(node.rhs, found)
        case promql_parser.ParenExpr() | promql_parser.UnaryExpr() | promql_parser.SubqueryExpr():
            _walk(node.expr, found)
        case promql_parser.NumberLiteral() | promql_parser.StringLiteral() | None:
            pass
        case _:
            raise TypeError(f"unknown PromQL node {type(node).__name__}: {node}")


def metric_names(query: str) -> set[str]:
    return {selector.name for selector in selectors(query)}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_queries() -> dict[str, str]:
    """Alert name → its expression."""
    return {rule["alert"]: rule["expr"] for rule in rules()}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels() -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(title of the row it is in, panel) for every panel that is not a row."""
    row: str | None = None
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
        else:
            yield row, panel


def dashboard_queries() -> dict[str, str]:
    """'<row> / <panel> / <refId>' → its expression."""
    return {f"{row} / {panel['title']} / {target['refId']}": target["expr"]
            for row, panel in dashboard_panels() for target in panel["targets"]}


def exposed_series(exposition: str) -> set[str]:
    """The series names a Prometheus text exposition may carry, from its ``# TYPE`` lines
    (so a labelled metric with no series yet counts as exported)."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum")}
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names.update(name + suffix for suffix in suffixes.get(kind, ("",)))
    return names


def exposed_labels(exposition: str, name: str) -> list[dict[str, str]]:
    """The label sets of the samples named ``name`` in an exposition."""
    return [dict(sample.labels) for family in text_string_to_metric_families(exposition)
            for sample in family.samples if sample.name == name]
