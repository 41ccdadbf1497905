"""1. Gateway throughput and ack latency: one ``callback_gateway`` process vs a bare aiohttp app.

* **Throughput**: ``wrk`` (closed loop, 32 connections) POSTs valid callbacks of 10
  projects (with secrets) to ``/api/callback``; every ``ok`` means the event was
  published to RabbitMQ with a publisher confirm (a persistent message in a quorum
  queue). Baseline: :mod:`bench.bare_app` under the same ``wrk``. The runs alternate
  (bare, gateway, variants, ...) so machine noise hits all of them alike; the queue is
  purged after each gateway run (nothing consumes it here).
* **CPU per callback**: the server process's CPU seconds over the run ÷ requests — less
  sensitive to the noise of a shared machine than throughput.
* **Latency at half load**: :mod:`bench.loadgen` open loop at half the gateway's median
  throughput, latency from each request's scheduled send time; baseline: the bare app
  at the same rate.
* **Broker alone**: the same rate of publishes with confirms straight from the bench
  process (``shared.broker.Broker``): how much of the gateway's tail is RabbitMQ's.
* **Variants** (full run): the gateway on uvloop, on uvloop with orjson, and with
  ``LOG_LEVEL=WARNING`` (no per-callback log line), via :mod:`bench.variants`.
* **Profile** (full run): ``py-spy`` on the gateway during a ``wrk`` run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from bench import profiling
from bench.harness import (
    BenchResult,
    Figure,
    Infra,
    Mode,
    ServiceProc,
    Stack,
    Target,
    callback_body,
    distribution,
    log,
    purge_queues,
)
from bench.load import WRK, run_open_loop, run_wrk
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
    percent = run["cpu"]["percent_of_one_core"].get(process, 0.0)
    seconds = run.get("seconds") or run.get("window_seconds") or 0.0
    requests = run.get("requests") or run.get("completed") or 0
    return 1e6 * percent / 100 * seconds / requests if requests else float("nan")


async def run(infra: Infra, mode: Mode) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    try:
        await stack.prepare_db()
        projects = await stack.add_projects(None, 10)
        bodies = [json.dumps(callback_body(project, index))
                  for index in range(10) for project in projects]
        starting = [stack.start_bare_app(), stack.start_service("callback_gateway")]
        names = ["bare_app", "gateway"]
        if not mode.quick:
            starting += [
                stack.start_service("callback_gateway", label="gateway_uvloop",
                                    launcher=["bench.variants", "--uvloop"]),
                stack.start_service("callback_gateway", label="gateway_uvloop_orjson",
                                    launcher=["bench.variants", "--uvloop", "--orjson"]),
                stack.start_service("callback_gateway", label="gateway_log_warning",
                                    LOG_LEVEL="WARNING")]
            names += ["gateway_uvloop", "gateway_uvloop_orjson", "gateway_log_warning"]
        servers: dict[str, ServiceProc] = dict(zip(names, await asyncio.gather(*starting),
                                                   strict=True))
        gateway = servers["gateway"]
        pids = {name: proc.pid for name, proc in servers.items()}
        pids["rabbitmq"] = infra.rabbit_pid() or 0
        pids["mongod"] = infra.mongod_pid
        topology = Topology(stack.prefix)
        reps, seconds = mode.pick(4, 1), mode.pick(4.0, 1.0)

        # Warm-up (full run): connections, caches, the quorum queue.
        for proc in servers.values() if not mode.quick else ():
            await run_wrk(proc.base_url, PATH, bodies, connections=CONNECTIONS, duration=1,
                          server_pids={})
        await purge_queues(infra.amqp_url, topology)

        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        order = list(servers)
        for rep in range(reps):
            rotation = order[rep % len(order):] + order[:rep % len(order)]
            for name in rotation:
                outcome = await run_wrk(servers[name].base_url, PATH, bodies,
                                        connections=CONNECTIONS, duration=seconds,
                                        server_pids=pids)
                if outcome["errors"]:
                    raise RuntimeError(f"{name}: {outcome['errors']} failed requests "
                                       "(broker restarted meanwhile?)")
                outcome["server_cpu_us_per_request"] = round(cpu_us_per_request(outcome, name), 1)
                runs[name].append(outcome)
                log(f"gateway: {name} {outcome['rps']:.0f} req/s "
                    f"({outcome['server_cpu_us_per_request']} µs CPU/req, "
                    f"errors {outcome['errors']})")
                if name != "bare_app":
                    await purge_queues(infra.amqp_url, topology)

        def rps(name: str) -> list[float]:
            return [float(outcome["rps"]) for outcome in runs[name]]

        def cpu(name: str) -> list[float]:
            return [float(outcome["server_cpu_us_per_request"]) for outcome in runs[name]]

        result.add(Figure("throughput", "callbacks/s acked (durable publish), 1 process", "req/s",
                          rps("gateway"), "bare aiohttp", rps("bare_app"), Target(">=", 0.7, "ratio")))
        result.add(Figure("cpu_per_callback", "gateway CPU per callback", "µs", cpu("gateway"),
                          "bare aiohttp", cpu("bare_app")))
        for variant, label in (("gateway_uvloop", "uvloop"),
                               ("gateway_uvloop_orjson", "uvloop + orjson"),
                               ("gateway_log_warning", "LOG_LEVEL=WARNING")):
            if variant in runs:
                result.add(Figure(f"throughput_{variant.removeprefix('gateway_')}",
                                  f"callbacks/s with {label}", "req/s", rps(variant),
                                  "gateway as is", rps("gateway")))
                result.add(Figure(f"cpu_per_callback_{variant.removeprefix('gateway_')}",
                                  f"CPU per callback with {label}", "µs", cpu(variant),
                                  "gateway as is", cpu("gateway")))

        # Fixed-rate latency at half the measured throughput.
        rate = max(50.0, round(statistics.median(rps("gateway")) / 2))
        latency: dict[str, list[dict[str, Any]]] = {"gateway": [], "bare_app": []}
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
                outcome = await run_open_loop(servers[name].base_url, PATH, bodies, rate=rate,
                                              duration=mode.pick(4.0, 1.0),
                                              warmup=mode.pick(1.0, 0.3), server_pids=pids)
                latency[name].append(outcome)
                log(f"gateway: {name} at {rate:g}/s p50 {outcome['latency_ms']['p50']} ms "
                    f"p99 {outcome['latency_ms']['p99']} ms")
                if name == "gateway":
                    await purge_queues(infra.amqp_url, topology)

        def lat(name: str, key: str) -> list[float]:
            return [float(outcome["latency_ms"][key]) for outcome in latency[name]]

        result.add(Figure("ack_latency_p50_half_load", f"ack latency p50 at {rate:g}/s (half load)",
                          "ms", lat("gateway", "p50"), "bare aiohttp", lat("bare_app", "p50")))
        result.add(Figure("ack_latency_p99_half_load", f"ack latency p99 at {rate:g}/s (half load)",
                          "ms", lat("gateway", "p99"), "bare aiohttp", lat("bare_app", "p99"),
                          Target("<=", 20.0)))
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
