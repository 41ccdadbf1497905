"""``python -m bench --quick`` end to end: every benchmark runs and reports numbers.

The CI smoke test of the benchmarks (docs/performance.md): real RabbitMQ, the bench's
own mongod, the VK sandbox and the services as processes. It checks the report's
shape, not the figures (quick-mode figures are not measurements).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = {"gateway", "burst", "freshness", "publishing", "verification", "notifier",
              "scaling"}


def finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(170)
def test_quick_mode_reports_every_benchmark_with_numbers(tmp_path: Path) -> None:
    output = tmp_path / "quick.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=160, check=False)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "benchmark" in completed.stdout  # the table

    report = json.loads(output.read_text())
    assert report["mode"] == "quick"
    assert set(report["benchmarks"]) == BENCHMARKS
    for name, benchmark in report["benchmarks"].items():
        assert benchmark["error"] is None, (name, benchmark["error"])
        assert benchmark["figures"], name
        for key, figure in benchmark["figures"].items():
            assert finite(figure["median"]), (name, key, figure)
            assert figure["samples"] and all(finite(value) for value in figure["samples"])
            if "baseline" in figure:
                assert finite(figure["baseline"]["median"]), (name, key, figure)
            assert figure["status"] in {"met", "NOT MET", "-"}
