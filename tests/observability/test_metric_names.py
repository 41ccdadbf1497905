"""Every metric the rules and the dashboard query is one the services (or RabbitMQ's
Prometheus plugin) really export, checked against their live ``/metrics``."""

from __future__ import annotations

import pytest

from tests.health.running import SERVICES
from tests.observability.promql import (
    Selector,
    dashboard_panels,
    dashboard_queries,
    exposed_labels,
    exposed_series,
    metric_names,
    rule_queries,
    selectors,
)
from tests.support.observability import RABBITMQ, Exports

ROW_OF_SERVICE = {"callback_gateway": "Callback gateway", "refresher": "Refresher",
                  "update_notifier": "Update notifier", "post_tracker": "Post tracker"}


class TestSelectors:
    @pytest.mark.parametrize(("query", "names"), [
        ("up", {"up"}),
        ('sum by (queue) (rate(a_total{x="1"}[$__rate_interval]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(b_seconds_bucket[5m])))", {"b_seconds_bucket"}),
        ("a / on (x) group_left (y) b or absent(c) unless d offset 30m", {"a", "b", "c", "d"}),
        ('-max_over_time((e{z!~"q.*"} > bool 1)[10m:1m]) and {__name__="f"}', {"e", "f"}),
        ('count(g) by (le) + label_replace(h, "dst", "$1", "src", "(.*)")', {"g", "h"}),
    ], ids=["bare", "rate", "histogram", "binary_ops", "subquery_and_name_matcher", "strings"])
    def test_finds_every_metric_name_and_nothing_else(self, query: str, names: set[str]) -> None:
        """Names come from selectors only: not functions, labels, strings, keywords."""
        assert metric_names(query) == names

    def test_a_selector_without_a_name_is_refused(self) -> None:
        """``{job="x"}`` names no metric, so no check could cover it."""
        with pytest.raises(ValueError, match="without a metric name"):
            selectors('sum({job="x"})')

    @pytest.mark.parametrize(("labels", "selected"), [
        ({"queue": "p.refresher.callbacks"}, True),
        ({"queue": "p.refresher.callbacks.dlq"}, False),
        ({"queue": "refresher.callbacks"}, False),
        ({}, False),
    ])
    def test_matchers_select_as_prometheus_does(self, labels: dict[str, str],
                                                selected: bool) -> None:
        """Regex matchers are anchored at both ends, as in Prometheus."""
        selector = Selector("q", (("queue", "=~", r".+\.refresher\.callbacks"),))
        assert selector.selects(labels) is selected


class TestDashboard:
    def test_one_row_per_service(self) -> None:
        """A row for each service, each with panels."""
        rows = {row for row, _panel in dashboard_panels()}
        assert set(ROW_OF_SERVICE.values()) <= rows

    def test_every_panel_queries_prometheus(self) -> None:
        """Every panel has at least one query, and every query parses as PromQL."""
        for row, panel in dashboard_panels():
            assert panel["targets"], f"{row} / {panel['title']} has no query"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for where, query in dashboard_queries().items():
            assert metric_names(query), where

    def test_the_rows_show_rates_latencies_queues_and_post_statuses(self) -> None:
        """Latency histograms in the gateway, refresher and notifier rows, queue depths in the
        refresher and notifier rows, post statuses in the tracker row."""
        names_by_row: dict[str | None, set[str]] = {}
        for row, panel in dashboard_panels():
            for target in panel["targets"]:
                names_by_row.setdefault(row, set()).update(metric_names(target["expr"]))
        assert "gateway_callback_ack_seconds_bucket" in names_by_row["Callback gateway"]
        assert "refresher_refresh_seconds_bucket" in names_by_row["Refresher"]
        assert "notifier_poll_seconds_bucket" in names_by_row["Update notifier"]
        for row in ("Refresher", "Update notifier"):
            assert "rabbitmq_queue_messages_ready" in names_by_row[row]
        assert "post_tracker_system_posts" in names_by_row["Post tracker"]


def _missing(queries: dict[str, str], exports: Exports) -> dict[str, set[str]]:
    exported = set().union(*(exposed_series(text) for text in exports.texts.values()))
    return {where: missing for where, query in queries.items()
            if (missing := metric_names(query) - exported)}


class TestNamesAreExported:
    def test_every_service_and_rabbitmq_were_read(self, exports: Exports) -> None:
        """The check below covers all four services and the broker's plugin."""
        assert set(exports.texts) == {*SERVICES, RABBITMQ}
        assert "rabbitmq_queue_messages_ready" in exposed_series(exports.texts[RABBITMQ])

    def test_every_metric_of_the_dashboard_is_exported(self, exports: Exports) -> None:
        """Each metric any dashboard query names is on some live ``/metrics``."""
        assert _missing(dashboard_queries(), exports) == {}

    def test_every_metric_of_the_rules_is_exported(self, exports: Exports) -> None:
        """Each metric any alert expression names is on some live ``/metrics``."""
        assert _missing(rule_queries(), exports) == {}

    def test_the_check_finds_a_misspelt_metric(self, exports: Exports) -> None:
        """A query naming a metric no one exports is reported, with its name."""
        assert _missing({"typo": "sum(rate(gateway_callback_total[5m]))"}, exports) == {
            "typo": {"gateway_callback_total"}}

    def test_queue_selectors_match_the_services_queues(self, exports: Exports) -> None:
        """Every RabbitMQ selector of the rules and the dashboard selects a queue the services
        declared (their names come from shared/topology.py, under any AMQP_PREFIX)."""
        text = exports.texts[RABBITMQ]
        prefix = exports.amqp_prefix
        for where, query in {**rule_queries(), **dashboard_queries()}.items():
            for selector in selectors(query):
                if not selector.name.startswith("rabbitmq_"):
                    continue
                queues = {labels["queue"] for labels in exposed_labels(text, selector.name)
                          if selector.selects(labels)}
                assert any(queue.startswith(f"{prefix}.") for queue in queues), (
                    where, selector, sorted(queues))

    def test_readiness_of_each_service_is_exported_under_its_name(self, exports: Exports) -> None:
        """``ServiceNotReady`` names the four services: each reports itself so."""
        for service in SERVICES:
            assert exposed_labels(exports.texts[service], "backbone_service_ready") == [
                {"service": service}]
