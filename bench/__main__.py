"""``python -m bench [--quick] [--only NAME,...] [--output PATH]``: run the benchmarks.

Prints the table to stdout (progress goes to stderr) and writes the JSON results
(default ``bench/results/latest.json``). Exits 0 even when targets are not met: a
target not met is a finding, printed as ``NOT MET`` with the measured figure; it
exits 1 only when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from bench import burst, freshness, gateway, notifier, publishing, scaling, verification
from bench.figures import BenchResult, results_from_json
from bench.infrastructure import BenchSize, Infra
from bench.processes import ROOT, NoiseWatch, raise_open_files_limit
from bench.report import RESULTS_DIR, log, machine_info, render_table, write_json

QUICK_LANES = (("gateway", "burst", "freshness", "scaling"),
               ("publishing", "verification", "notifier"))


def uncommitted_code() -> list[str]:
    """Files of the measured code that differ from the commit (others may be editing)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "services", "shared", "tools"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in out.splitlines()]


MODULES: dict[str, ModuleType] = {module.NAME: module for module in (
    gateway, burst, freshness, publishing, verification, notifier, scaling)}


KEEP_LOG_RUNS = 5


def prune_logs(keep: int = KEEP_LOG_RUNS) -> None:
    """Keep the logs (and profiles) of the newest ``keep`` runs; a full run writes ~50 MB."""
    logs = RESULTS_DIR / "logs"
    if not logs.is_dir():
        return
    runs = sorted((path for path in logs.iterdir() if path.is_dir()),
                  key=lambda path: path.stat().st_mtime, reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def run_one(module: ModuleType, infra: Infra, mode: BenchSize) -> BenchResult:
    """Run one benchmark; once more if it failed (the machine's broker is shared, and
    other users' tests may restart it)."""
    for attempt in (1, 2):
        try:
            result: BenchResult = await module.run(infra, mode)
            if attempt == 2:
                result.details["attempts"] = 2
            return result
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            error = f"{type(exc).__name__}: {exc}"
            if attempt == 1:
                log(f"{module.NAME} failed ({error}); trying once more")
                await infra.recover_broker()
    return BenchResult(module.NAME, module.TITLE, error=error)


async def run_all(mode: BenchSize, names: list[str], private_broker: bool
                  ) -> tuple[list[BenchResult], Infra, float]:
    started = time.monotonic()
    infra = Infra(mode, private_broker)
    results: dict[str, BenchResult] = {}

    async def lane(lane_names: list[str]) -> None:
        for name in lane_names:
            module = MODULES[name]
            log(f"--- {name}: {module.TITLE}")
            begun = time.monotonic()
            with NoiseWatch() as noise:
                result = await run_one(module, infra, mode)
            result.seconds = time.monotonic() - begun
            result.noise = noise.report
            log(f"--- {name} done in {result.seconds:.1f}s")
            results[name] = result

    try:
        await infra.start()
        if mode.quick:
            # A smoke test, not a measurement: two benchmarks at a time.
            await asyncio.gather(*(lane([name for name in names if name in group])
                                   for group in QUICK_LANES))
        else:
            await lane(names)
    finally:
        await infra.stop()
    return [results[name] for name in names if name in results], infra, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI smoke: every benchmark, small")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(MODULES)}")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--table-from", type=Path, metavar="JSON",
                        help="only print the table of a saved run (e.g. bench/results/latest.json)")
    parser.add_argument("--private-broker", action="store_true",
                        help="run a RabbitMQ node of its own instead of the one on :5672")
    args = parser.parse_args(argv)
    if args.table_from is not None:
        print(render_table(results_from_json(json.loads(args.table_from.read_text())),
                           markdown=args.markdown))
        return 0
    names = [name.strip() for name in args.only.split(",") if name.strip()] or list(MODULES)
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    mode = BenchSize(quick=args.quick)
    open_files = raise_open_files_limit()
    machine = machine_info()
    results, infra, seconds = asyncio.run(run_all(mode, names, args.private_broker))
    payload = {
        "mode": "quick" if mode.quick else "full",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1), "commit": git_commit(),
        "uncommitted_code": uncommitted_code(), "machine": machine,
        "open_files_limit": open_files, "run_id": infra.run_id, "broker": infra.broker,
        "logs": str(infra.log_dir.relative_to(ROOT)),
        "benchmarks": {result.name: result.to_json() for result in results},
    }
    write_json(args.output, payload)
    prune_logs()
    print(render_table(results, markdown=args.markdown))
    print(f"\n{payload['mode']} run: {seconds:.0f}s on {machine['nproc']} × {machine['cpu_model']}, "
          f"{machine['ram_gib']} GiB; results in {args.output}")
    return 1 if any(result.error for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
