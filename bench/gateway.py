"""1. Gateway throughput and ack latency: one ``callback_gateway`` process vs a bare aiohttp app.

Three servers in one run, all on the services' event loop (uvloop, ``shared.service``):

* **bare**: :mod:`bench.bare_app`, answers ``ok`` without work — the ceiling;
* **naive**: the same app publishing each body with a confirm of its own first (one
  persistent, mandatory aio-pika publish per request) — the durable floor without
  group commit;
* **gateway**: the service (validation, project lookup, secret check, group commit:
  callbacks share confirms, ``services/callback_gateway/group_commit.py``).

* **Throughput**: ``wrk`` (closed loop, 32 connections) POSTs valid callbacks of 10
  projects (with secrets) to ``/api/callback``; every gateway ``ok`` means the event was
  published to RabbitMQ with a publisher confirm (a persistent message in a quorum
  queue). The runs alternate so machine noise hits all servers alike; the queue is
  purged after each durable run (nothing consumes it here).
* **CPU per callback**: the server process's CPU seconds over the run ÷ requests, and
  RabbitMQ's (``beam.smp``) likewise — less sensitive to the noise of a shared machine
  than throughput.
* **Mean batch size**: events per published message, from the gateway's
  ``gateway_batched_events_total`` / ``gateway_batches_total`` over the throughput runs.
* **Latency at half load**: :mod:`bench.loadgen` open loop at half the gateway's median
  throughput, latency from each request's scheduled send time; baseline: the bare app
  at the same rate. **Broker alone**: the same rate of single publishes with confirms
  from the bench process.
* **Full run only**: the gateway on asyncio's own loop (what uvloop gives, via
  :mod:`bench.variants`); ``GATEWAY_WORKERS=2`` (two processes on one port) against
  one; a ``py-spy`` profile of the gateway during a ``wrk`` run.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench import profiling
from bench.figures import BenchResult, Figure, Target, distribution
from bench.infrastructure import BenchSize, Infra
from bench.load import WRK, run_open_loop, run_wrk
from bench.processes import BenchService, descendants
from bench.report import log
from bench.stack import Stack, callback_body, purge_queues
from shared.broker import Broker
from shared.messages import CallbackEvent
from shared.topology import Topology

NAME = "gateway"
TITLE = "Gateway: callbacks/s with durable publish, ack latency at half load"
PATH = "/api/callback"
CONNECTIONS = 32


async def confirm_latency(amqp_url: str, topology: Topology, event: CallbackEvent, rate: float,
                          duration: float) -> dict[str, Any]:
    """The broker alone: publish ``event`` with confirms (shared/broker.py) at a fixed rate,
    open loop, from this process; latency from the scheduled moment to the confirm."""
    broker = Broker(amqp_url, topology, client_name="bench-confirms")
    await broker.connect()
    latencies: list[float] = []
    try:
        async def one(due: float) -> None:
            await broker.publish_callback(event, timeout=10)
            latencies.append(time.perf_counter() - due)

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.05
        for index in range(int(rate * duration)):
            due = start + index / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    finally:
        await broker.close()
    return distribution(latencies, 1000)


def cpu_us_per_request(run: dict[str, Any], process: str) -> float:
    """CPU µs per request of ``process`` (and of its workers, named ``process#n``)."""
    percent = sum(value for name, value in run["cpu"]["percent_of_one_core"].items()
                  if name == process or name.startswith(f"{process}#"))
    seconds = run.get("seconds") or run.get("window_seconds") or 0.0
    requests = run.get("requests") or run.get("completed") or 0
    return 1e6 * percent / 100 * seconds / requests if requests else float("nan")


_BATCH_LINE = re.compile(r"^gateway_(batched_events|batches)_total ([0-9.e+]+)$", re.MULTILINE)


async def batch_totals(proc: BenchService) -> tuple[float, float]:
    """(events, batches) the gateway has published so far, from its ``/metrics``."""
    async with aiohttp.ClientSession() as session, session.get(f"{proc.base_url}/metrics") as response:
        text = await response.text()
    found = dict(_BATCH_LINE.findall(text))
    return float(found.get("batched_events", 0)), float(found.get("batches", 0))


DURABLE = ("naive", "gateway", "gateway_asyncio", "gateway_2workers")


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    try:
        await stack.prepare_db()
        projects = await stack.add_projects(None, 10)
        bodies = [json.dumps(callback_body(project, index))
                  for index in range(10) for project in projects]
        starting = [stack.start_bare_app(),
                    stack.start_bare_app("--publish-to", stack.prefix, "--amqp-url",
                                         infra.amqp_url, label="naive"),
                    stack.start_service("callback_gateway")]
        names = ["bare_app", "naive", "gateway"]
        if not mode.quick:
            starting += [
                stack.start_service("callback_gateway", label="gateway_asyncio",
                                    launcher=["bench.variants", "--asyncio"]),
                stack.start_service("callback_gateway", label="gateway_2workers",
                                    GATEWAY_WORKERS="2")]
            names += ["gateway_asyncio", "gateway_2workers"]
        servers: dict[str, BenchService] = dict(zip(names, await asyncio.gather(*starting),
                                                   strict=True))
        gateway = servers["gateway"]
        topology = Topology(stack.prefix)
        reps, seconds = mode.pick(4, 1), mode.pick(4.0, 1.0)

        # Warm-up (full run): connections, caches, the quorum queue; every worker started.
        for proc in servers.values() if not mode.quick else ():
            await run_wrk(proc.base_url, PATH, bodies, connections=CONNECTIONS, duration=1,
                          server_pids={})
        pids = {name: proc.pid for name, proc in servers.items()}
        for name, proc in servers.items():
            pids.update({f"{name}#{index}": pid
                         for index, pid in enumerate(descendants(proc.pid))})
        pids["rabbitmq"] = infra.rabbit_pid() or 0
        pids["mongod"] = infra.mongod_pid
        await purge_queues(infra.amqp_url, topology)

        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        batches: dict[str, list[float]] = {name: [] for name in servers if name.startswith("gateway")}
        order = list(servers)
        for rep in range(reps):
            rotation = order[rep % len(order):] + order[:rep % len(order)]
            for name in rotation:
                before = await batch_totals(servers[name]) if name in batches else (0.0, 0.0)
                outcome = await run_wrk(servers[name].base_url, PATH, bodies,
                                        connections=CONNECTIONS, duration=seconds,
                                        server_pids=pids)
                if outcome["errors"]:
                    raise RuntimeError(f"{name}: {outcome['errors']} failed requests "
                                       "(broker restarted meanwhile?)")
                outcome["server_cpu_us_per_request"] = round(cpu_us_per_request(outcome, name), 1)
                outcome["rabbitmq_cpu_us_per_request"] = round(
                    cpu_us_per_request(outcome, "rabbitmq"), 1)
                if name in batches:
                    after = await batch_totals(servers[name])
                    events, count = after[0] - before[0], after[1] - before[1]
                    outcome["mean_batch_events"] = round(events / count, 2) if count else 0.0
                    batches[name].append(outcome["mean_batch_events"])
                runs[name].append(outcome)
                log(f"gateway: {name} {outcome['rps']:.0f} req/s "
                    f"({outcome['server_cpu_us_per_request']} µs CPU/req, RabbitMQ "
                    f"{outcome['rabbitmq_cpu_us_per_request']} µs/req, "
                    f"batch {outcome.get('mean_batch_events', '-')})")
                if name in DURABLE:
                    await purge_queues(infra.amqp_url, topology)

        def rps(name: str) -> list[float]:
            return [float(outcome["rps"]) for outcome in runs[name]]

        def cpu(name: str, process: str = "server") -> list[float]:
            return [float(outcome[f"{process}_cpu_us_per_request"]) for outcome in runs[name]]

        result.add(Figure("throughput", "callbacks/s acked (durable publish), 1 process", "req/s",
                          rps("gateway"), "bare aiohttp", rps("bare_app"), Target(">=", 0.5, "ratio")))
        result.add(Figure("throughput_naive", "naive: bare + 1 confirmed publish per request",
                          "req/s", rps("naive"), "bare aiohttp", rps("bare_app")))
        result.add(Figure("throughput_vs_naive", "gateway callbacks/s vs the naive publisher",
                          "req/s", rps("gateway"), "naive", rps("naive")))
        result.add(Figure("cpu_per_callback", "gateway CPU per callback", "µs", cpu("gateway"),
                          "bare aiohttp", cpu("bare_app"), Target("<=", 100.0)))
        result.add(Figure("cpu_per_callback_naive", "naive CPU per callback", "µs", cpu("naive"),
                          "bare aiohttp", cpu("bare_app")))
        result.add(Figure("rabbitmq_cpu_per_callback", "RabbitMQ CPU per callback (gateway)",
                          "µs", cpu("gateway", "rabbitmq"), "naive", cpu("naive", "rabbitmq")))
        result.add(Figure("mean_batch_events", "events per published message (gateway, wrk)",
                          "events", batches["gateway"]))
        if "gateway_asyncio" in runs:
            result.add(Figure("throughput_asyncio_loop", "gateway callbacks/s on asyncio's loop",
                              "req/s", rps("gateway_asyncio"), "on uvloop", rps("gateway")))
            result.add(Figure("cpu_per_callback_asyncio_loop", "gateway CPU/callback on asyncio's loop",
                              "µs", cpu("gateway_asyncio"), "on uvloop", cpu("gateway")))
        if "gateway_2workers" in runs:
            result.add(Figure("throughput_2_workers", "callbacks/s with GATEWAY_WORKERS=2",
                              "req/s", rps("gateway_2workers"), "1 worker", rps("gateway")))
            result.add(Figure("cpu_per_callback_2_workers", "CPU per callback, 2 workers (sum)",
                              "µs", cpu("gateway_2workers"), "1 worker", cpu("gateway")))
            result.add(Figure("mean_batch_events_2_workers", "events per message, 2 workers",
                              "events", batches["gateway_2workers"], "1 worker", batches["gateway"]))

        # Fixed-rate latency at half the measured throughput.
        rate = max(50.0, round(statistics.median(rps("gateway")) / 2))
        latency: dict[str, list[dict[str, Any]]] = {"gateway": [], "bare_app": []}
        half_load_batches: list[float] = []
        confirms: list[dict[str, Any]] = []
        event = CallbackEvent(correlation_id="bench", type="wall_post_new",
                              group_id=projects[0].group_id, event_id="bench", v="5.199",
                              object=json.loads(bodies[0])["object"], project_id=projects[0].id,
                              received_at=datetime.now(UTC))
        for _ in range(mode.pick(3, 1)):
            confirms.append(await confirm_latency(infra.amqp_url, topology, event, rate,
                                                  mode.pick(4.0, 1.0)))
            await purge_queues(infra.amqp_url, topology)
            for name in ("bare_app", "gateway"):
                before = await batch_totals(gateway) if name == "gateway" else (0.0, 0.0)
                outcome = await run_open_loop(servers[name].base_url, PATH, bodies, rate=rate,
                                              duration=mode.pick(4.0, 1.0),
                                              warmup=mode.pick(1.0, 0.3), server_pids=pids)
                latency[name].append(outcome)
                log(f"gateway: {name} at {rate:g}/s p50 {outcome['latency_ms']['p50']} ms "
                    f"p99 {outcome['latency_ms']['p99']} ms")
                if name == "gateway":
                    after = await batch_totals(gateway)
                    if after[1] > before[1]:
                        half_load_batches.append(round((after[0] - before[0])
                                                       / (after[1] - before[1]), 2))
                    await purge_queues(infra.amqp_url, topology)

        def lat(name: str, key: str) -> list[float]:
            return [float(outcome["latency_ms"][key]) for outcome in latency[name]]

        result.add(Figure("ack_latency_p50_half_load", f"ack latency p50 at {rate:g}/s (half load)",
                          "ms", lat("gateway", "p50"), "bare aiohttp", lat("bare_app", "p50")))
        result.add(Figure("ack_latency_p99_half_load", f"ack latency p99 at {rate:g}/s (half load)",
                          "ms", lat("gateway", "p99"), "bare aiohttp", lat("bare_app", "p99"),
                          Target("<=", 20.0)))
        if half_load_batches:
            result.add(Figure("mean_batch_events_half_load", f"events per message at {rate:g}/s",
                              "events", half_load_batches))
        result.add(Figure("broker_confirm_p99_half_load",
                          f"broker alone: publish→confirm p99 at {rate:g}/s", "ms",
                          [float(outcome["p99"]) for outcome in confirms],
                          "for comparison: gateway ack p99",
                          lat("gateway", "p99")))

        profile: dict[str, Any] = {"skipped": "quick mode"}
        if not mode.quick:
            out = infra.log_dir / "gateway-py-spy.raw"
            spy = await profiling.record(gateway.pid, 5, out)
            await run_wrk(gateway.base_url, PATH, bodies, connections=CONNECTIONS, duration=6,
                          server_pids={})
            profile = await profiling.collect(spy, out)
            await purge_queues(infra.amqp_url, topology)

        result.details = {
            "generator": {
                "throughput": (f"wrk -t1 -c{CONNECTIONS} (Lua: 100 prebuilt callback bodies)"
                               if WRK else f"bench.loadgen closed loop -c{CONNECTIONS} (wrk absent)"),
                "latency": "bench.loadgen open loop (fixed rate, latency from scheduled send)",
                "throughput_generator_cpu_percent": {
                    name: [outcome["generator_cpu_percent"] for outcome in outcomes]
                    for name, outcomes in runs.items()},
                "latency_generator_cpu_percent": {
                    name: [outcome["generator_cpu_percent"] for outcome in outcomes]
                    for name, outcomes in latency.items()},
                "latency_dispatch_lag_p99_ms": {
                    name: [outcome["dispatch_lag_ms"]["p99"] for outcome in outcomes]
                    for name, outcomes in latency.items()},
            },
            "half_load_rate": rate,
            "errors": {name: sum(outcome["errors"] for outcome in outcomes)
                       for name, outcomes in runs.items()},
            "cpu_during_throughput_runs": {name: [outcome["cpu"] for outcome in outcomes]
                                           for name, outcomes in runs.items()},
            "broker_confirm_ms": confirms,
            "profile": profile,
        }
        return result
    finally:
        await stack.close()
