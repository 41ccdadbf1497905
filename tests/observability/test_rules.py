"""deploy/observability/alerts.yml under promtool: valid rules, and unit tests that pass."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.observability.promql import ROOT, RULE_TESTS, RULES, rule_queries, rules
from tests.support.observability import run_promtool


def _rule_tests() -> list[dict[str, object]]:
    tests: list[dict[str, object]] = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    return tests


class TestPromtool:
    def test_the_rules_pass_promtool_check_rules(self, promtool: str) -> None:
        """``promtool check rules``: the file, every expression and template are valid."""
        result = run_promtool(promtool, "check", "rules", RULES.name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(rule_queries())} rules found" in result.stdout

    def test_the_rule_unit_tests_pass(self, promtool: str) -> None:
        """``promtool test rules``: every case fires (or stays silent) as written."""
        result = run_promtool(promtool, "test", "rules", RULE_TESTS.name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_the_unit_tests_catch_a_changed_threshold(self, promtool: str, tmp_path: Path) -> None:
        """The same unit tests against rules whose 503 threshold is raised tenfold fail."""
        changed = RULES.read_text(encoding="utf-8").replace("> 0.05", "> 0.5")
        assert changed != RULES.read_text(encoding="utf-8")
        (tmp_path / RULES.name).write_text(changed, encoding="utf-8")
        (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text(encoding="utf-8"),
                                                encoding="utf-8")
        result = run_promtool(promtool, "test", "rules", str(tmp_path / RULE_TESTS.name))
        assert result.returncode != 0
        assert "alertname: GatewayUnavailable" in result.stdout + result.stderr


class TestRuleCoverage:
    def test_every_alert_has_a_firing_and_a_silent_case(self) -> None:
        """Each alert of alerts.yml is expected to fire at some evaluation of the unit tests,
        and expected to stay silent at another."""
        firing: set[str] = set()
        silent: set[str] = set()
        for test in _rule_tests():
            for case in test.get("alert_rule_test", []):  # type: ignore[attr-defined]
                (firing if case["exp_alerts"] else silent).add(case["alertname"])
        alerts = set(rule_queries())
        assert alerts - firing == set(), "alerts never expected to fire"
        assert alerts - silent == set(), "alerts never expected to stay silent"
        assert (firing | silent) <= alerts, "unit tests of alerts that do not exist"

    def test_the_required_alerts_exist(self) -> None:
        """The alerts an operator of this system expects (issue 12)."""
        assert set(rule_queries()) == {
            "DeadLetterQueueNotEmpty", "ProjectRefreshFailing", "SystemPostsFailed",
            "GatewayUnavailable", "ConsumerQueueGrowing", "ServiceNotReady"}

    def test_every_runbook_link_leads_to_its_section(self) -> None:
        """Each alert's ``runbook`` annotation is docs/operations.md#<alert>, a heading there."""
        operations = ROOT / "docs" / "operations.md"
        headings = {line.removeprefix("### ").strip().lower()
                    for line in operations.read_text(encoding="utf-8").splitlines()
                    if line.startswith("### ")}
        for rule in rules():
            path, _, anchor = rule["annotations"]["runbook"].partition("#")
            assert (ROOT / path) == operations, rule["alert"]
            assert anchor == rule["alert"].lower() and anchor in headings, rule["alert"]
