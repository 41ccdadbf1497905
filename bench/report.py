"""What the bench tells: progress lines on stderr, the results table, the JSON report."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from bench.figures import BenchResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def quiet_library_logs() -> None:
    """The bench process's own use of shared/ (VK client, broker) logs warnings only, to stderr."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()



def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1 or value == 0:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip()


def table_rows(results: Sequence[BenchResult]) -> list[list[str]]:
    rows = [["benchmark", "figure", "measured: median [min–max]", "baseline (same run)", "ratio",
             "target", "status", "others' CPU"]]
    for result in results:
        noise = (f"{result.noise['others_percent']:.0f}% of machine"
                 if "others_percent" in result.noise else "")
        if result.error:
            rows.append([result.name, "ERROR", result.error[:60], "", "", "", "NOT MET", noise])
        for figure in result.figures:
            spread = (f" [{fmt(min(figure.samples))}–{fmt(max(figure.samples))}]"
                      if len(figure.samples) > 1 else "")
            baseline = (f"{figure.baseline_label}: {fmt(figure.baseline_median, figure.unit)}"
                        if figure.baseline_samples else "")
            ratio = f"{figure.ratio:.3g}" if figure.ratio is not None else ""
            target = figure.target.describe() if figure.target else ""
            rows.append([result.name, figure.label, fmt(figure.median, figure.unit) + spread,
                         baseline, ratio, target, figure.status, noise])
            noise = ""
    return rows


def render_table(results: Sequence[BenchResult], markdown: bool = False) -> str:
    rows = table_rows(results)
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    out = []
    for number, row in enumerate(rows):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    load = os.getloadavg()
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "ram_gib": round(memory_kb / 1024 / 1024, 1),
            "python": sys.version.split()[0], "loadavg_at_start": [round(v, 2) for v in load]}


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=True) + "\n")

