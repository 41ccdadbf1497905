"""6. Notifier capacity: cursor-mode ``getUpdates`` per process, and concurrent SSE streams.

* **getUpdates**: the update log holds 1000 entries (written as the notifier writes
  them: numbered, with the counter); clients poll with cursors a few entries behind the
  head (each answer lists up to 10 projects). The capacity is the highest fixed rate
  (:mod:`bench.loadgen` open loop, 128 connections) whose p99 stays ≤ 20 ms with no
  errors, found by stepping through fractions of the process's closed-loop maximum
  (``wrk``). Target ≥ 5000 req/s. Baseline: the bare aiohttp app, same search (its
  steps are capped at 8000/s, above the notifier's capacity, to keep the Python
  generator within what it can drive — its dispatch lag is in the JSON details; a
  capped result is a lower bound).
* **SSE streams**: :mod:`bench.sse_clients` (its own process) opens N streams; the
  notifier's RSS with N open is read from ``/proc`` next to its idle RSS, and one
  ``ProjectUpdated`` published to RabbitMQ is timed to every stream (fan-out).
  ``ulimit -n`` is raised by the bench process for itself and its children.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import profiling
from bench.figures import BenchResult, Figure, Target
from bench.gateway import cpu_us_per_request
from bench.infrastructure import BenchSize, Infra
from bench.load import run_open_loop, run_wrk
from bench.processes import PYTHON, ROOT, BenchService
from bench.report import log
from bench.stack import Stack
from services.update_notifier.update_log import SEQ_COUNTER_ID
from shared.broker import Broker
from shared.messages import ProjectUpdated, UpdateReason
from shared.mongo import COUNTERS, PROJECT_UPDATES
from shared.topology import Topology

NAME = "notifier"
TITLE = "Notifier capacity: getUpdates (cursor) req/s at p99 ≤ 20 ms; SSE streams and RSS"
PATH = "/api/getUpdates"
LOG_ENTRIES = 1000
P99_LIMIT_MS = 20.0
BARE_CAP = 8000.0


async def fill_log(stack: Stack) -> None:
    now = datetime.now(UTC)
    await stack.db[PROJECT_UPDATES].insert_many([{
        "_id": seq, "project_id": f"bench-{seq % 50}", "content_types": ["published"],
        "reason": UpdateReason.REFRESH, "correlation_id": uuid.uuid4().hex, "occurred_at": now,
        "created_at": now, "dedupe_key": uuid.uuid4().hex,
    } for seq in range(1, LOG_ENTRIES + 1)])
    await stack.db[COUNTERS].update_one({"_id": SEQ_COUNTER_ID}, {"$set": {"seq": LOG_ENTRIES}},
                                        upsert=True)


async def capacity(proc: BenchService, bodies: list[str], pids: dict[str, int], upper: float,
                   fractions: list[float], seconds: float) -> tuple[float, list[dict[str, Any]]]:
    """The highest tested rate with p99 ≤ 20 ms and no errors, and every step's result.

    A step that misses is tried once more before the search stops (one noisy second of
    a shared machine should not end it).
    """
    best, steps = 0.0, []
    for fraction in fractions:
        rate = float(max(20, round(upper * fraction / 10) * 10))
        for _attempt in (1, 2):
            outcome = await run_open_loop(proc.base_url, PATH, bodies, rate=rate,
                                          duration=seconds, warmup=0.5, server_pids=pids)
            p99 = outcome["latency_ms"]["p99"] or float("inf")
            ok = (outcome["errors"] == 0 and outcome["non_2xx"] == 0 and p99 <= P99_LIMIT_MS
                  and (outcome["achieved_rps"] or 0) >= 0.97 * rate)
            steps.append({"rate": rate, "p99_ms": p99, "p50_ms": outcome["latency_ms"]["p50"],
                          "ok": ok, "errors": outcome["errors"] + outcome["non_2xx"],
                          "generator_cpu_percent": outcome["generator_cpu_percent"],
                          "server_cpu": outcome["cpu"]["percent_of_one_core"]})
            log(f"notifier: {proc.name} at {rate:g}/s p99 {p99} ms {'ok' if ok else 'over'}")
            if ok:
                break
        if not ok:
            break
        best = rate
    return best, steps


async def streams(stack: Stack, notifier: BenchService, count: int) -> dict[str, Any]:
    idle_rss = notifier.rss_bytes()
    clients = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "bench.sse_clients", "--port", str(notifier.port), "--count", str(count),
        "--concurrency", "100", "--timeout", "120", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert clients.stdin is not None and clients.stdout is not None
    try:
        opened = json.loads(await asyncio.wait_for(clients.stdout.readline(), 300))
        await asyncio.sleep(1.0)
        held_rss = notifier.rss_bytes()
        broker = Broker(stack.infra.amqp_url, Topology(stack.prefix), client_name="bench-sse")
        await broker.connect()
        try:
            published_at = time.time()
            await broker.publish_update(ProjectUpdated(project_id="bench-fanout",
                                                       reason=UpdateReason.REFRESH))
        finally:
            await broker.close()
        clients.stdin.write(b"go\n")
        await clients.stdin.drain()
        received = json.loads(await asyncio.wait_for(clients.stdout.readline(), 180))
        clients.stdin.close()
        await asyncio.wait_for(clients.wait(), 60)
    finally:
        if clients.returncode is None:
            clients.kill()
            await clients.wait()
    times = received.get("times", {})
    return {
        "requested": count, "opened": opened["opened"], "failed": opened["failed"],
        "open_seconds": opened["seconds"], "client_max_rss_mb": opened["client_max_rss_mb"],
        "notifier_idle_rss_mb": round(idle_rss / 2**20, 1),
        "notifier_rss_mb": round(held_rss / 2**20, 1),
        "kb_per_stream": round((held_rss - idle_rss) / 1024 / max(1, opened["opened"]), 1),
        "update_received_by": received.get("received"),
        "fanout_seconds": {key: round(value - published_at, 3) for key, value in times.items()},
    }


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    try:
        await stack.prepare_db()
        await fill_log(stack)
        notifier, bare = await asyncio.gather(stack.start_service("update_notifier"),
                                              stack.start_bare_app())
        bodies = [json.dumps({"cursor": f"v1.{LOG_ENTRIES - behind}"}) for behind in range(11)]
        pids = {"notifier": notifier.pid, "bare_app": bare.pid, "mongod": infra.mongod_pid}
        seconds = mode.pick(3.0, 1.0)
        fractions = mode.pick([0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0], [0.3])
        closed: dict[str, list[float]] = {"notifier": [], "bare_app": []}
        cpu: dict[str, list[float]] = {"notifier": [], "bare_app": []}
        for _ in range(mode.pick(2, 1)):
            for name, proc in (("bare_app", bare), ("notifier", notifier)):
                outcome = await run_wrk(proc.base_url, PATH, bodies, connections=32,
                                        duration=mode.pick(3, 1), server_pids=pids)
                closed[name].append(float(outcome["rps"]))
                cpu[name].append(round(cpu_us_per_request(outcome, name), 1))
        upper = {name: sorted(values)[len(values) // 2] for name, values in closed.items()}
        profile: dict[str, Any] = {"skipped": "quick mode"}
        if not mode.quick:
            out = infra.log_dir / "notifier-py-spy.raw"
            spy = await profiling.record(notifier.pid, 3, out)
            await run_wrk(notifier.base_url, PATH, bodies, connections=32, duration=4,
                          server_pids={})
            profile = await profiling.collect(spy, out)
        notifier_capacity, notifier_steps = await capacity(
            notifier, bodies, pids, upper["notifier"], fractions, seconds)
        bare_capacity, bare_steps = await capacity(
            bare, bodies, pids, min(BARE_CAP, upper["bare_app"]), fractions, seconds)
        result.add(Figure("getupdates_rps_p99_20ms", "getUpdates (cursor) req/s with p99 ≤ 20 ms",
                          "req/s", [notifier_capacity], f"bare aiohttp (capped {BARE_CAP:.0f}/s)",
                          [bare_capacity], Target(">=", 5000.0)))
        result.add(Figure("getupdates_rps_max", "getUpdates (cursor) req/s, closed loop max",
                          "req/s", closed["notifier"], "bare aiohttp", closed["bare_app"]))
        result.add(Figure("getupdates_cpu", "notifier CPU per getUpdates (closed loop)", "µs",
                          cpu["notifier"], "bare aiohttp", cpu["bare_app"]))

        count = mode.pick(10_000, 200)
        held = await streams(stack, notifier, count)
        log(f"notifier: {held['opened']} streams, RSS {held['notifier_rss_mb']} MB "
            f"(idle {held['notifier_idle_rss_mb']} MB), fan-out {held['fanout_seconds']}")
        result.add(Figure("sse_streams", "SSE streams held by one process", "streams",
                          [float(held["opened"])], None, None, Target(">=", float(count))))
        result.add(Figure("sse_rss_mb", f"notifier RSS with {held['opened']} streams", "MB",
                          [held["notifier_rss_mb"]], "idle (0 streams)",
                          [held["notifier_idle_rss_mb"]],
                          Target("<=", 300.0)))
        fanout_p99 = held["fanout_seconds"].get("p99", float("nan"))
        result.add(Figure("sse_fanout_p99", f"one update → {held['opened']} streams, p99", "s",
                          [fanout_p99]))
        result.details = {"closed_loop_rps": closed, "capacity_steps": {
            "notifier": notifier_steps, "bare_app": bare_steps},
            "sse": held, "log_entries": LOG_ENTRIES, "getupdates_profile": profile,
            "cursors": "1–10 entries behind the head"}
        return result
    finally:
        await stack.close()
