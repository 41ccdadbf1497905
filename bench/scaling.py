"""7. Scaling: 1 vs 2 refresher processes on the same burst.

The burst (callbacks of 10 projects, as the gateway publishes them: ``CallbackEvent``
messages, persistent, with confirms) is put into the refresher queue while no
refresher runs; then 1 (or 2) refresher processes start together and drain it. The
throughput is events claimed per second between 10 % and 90 % of the burst (so the
processes' start-up does not count), from the ``processed_events`` collection the
refresher writes once per event. The run ends when every refresh ticket is completed.

Reported beside it: CPU of the refreshers, mongod and RabbitMQ during the drain, and
(full run) a ``py-spy`` profile of the single refresher.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import profiling
from bench.figures import BenchResult, Figure
from bench.infrastructure import BenchSize, Infra
from bench.processes import BenchService, CpuWatch, wait_until
from bench.report import log
from bench.stack import BenchProject, Stack
from shared.broker import Broker
from shared.messages import CallbackEvent, new_correlation_id
from shared.mongo import PROCESSED_EVENTS, REFRESH_FENCES, REFRESH_STATE, ContentType
from shared.topology import Topology
from tools.vk_sandbox.control import SandboxControl

NAME = "scaling"
TITLE = "Refresher scaling: 1 vs 2 processes on one burst"
PROJECTS = 10


async def fill_queue(stack: Stack, projects: list[BenchProject], events: int) -> None:
    broker = Broker(stack.infra.amqp_url, Topology(stack.prefix), client_name="bench-filler")
    await broker.connect()
    try:
        pending: list[Any] = []
        for index in range(events):
            project = projects[index % len(projects)]
            event = CallbackEvent(
                correlation_id=new_correlation_id(), type="wall_post_new",
                group_id=project.group_id, event_id=uuid.uuid4().hex, v="5.199",
                object={"id": index + 1, "owner_id": -project.group_id, "post_type": "post",
                        "text": f"scaling {index}", "date": int(time.time())},
                project_id=project.id, received_at=datetime.now(UTC))
            pending.append(broker.publish_callback(event, timeout=30))
            if len(pending) >= 200:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await broker.close()


async def drained(stack: Stack, expected: int) -> bool:
    if await stack.db[PROCESSED_EVENTS].count_documents({}) < expected:
        return False
    async for state in stack.db[REFRESH_STATE].find({}):
        if state["requested"] != state["completed"] or state.get("lease_owner") is not None:
            return False
    return True


async def one_run(stack: Stack, sandbox: SandboxControl, projects: list[BenchProject],
                  processes: int, events: int, profile: bool) -> dict[str, Any]:
    infra = stack.infra
    # A clean slate in the same database: no tickets, no events seen, empty caches.
    for collection in (PROCESSED_EVENTS, REFRESH_STATE, REFRESH_FENCES,
                       ContentType.PUBLISHED.collection):
        await stack.db[collection].delete_many({})
    await sandbox.clear_calls()
    await asyncio.sleep(1.1)  # VK's 1-s window of the previous run's calls
    procs: list[BenchService] = []
    try:
        # The filler's broker declares the whole topology before it publishes.
        await fill_queue(stack, projects, events)
        for number in range(processes):
            procs.append(await stack.start_service("refresher", label=f"refresher{number}",
                                                   wait=False))
        pids = {proc.name: proc.pid for proc in procs}
        pids.update({"mongod": infra.mongod_pid, "rabbitmq": infra.rabbit_pid() or 0})
        samples: list[tuple[float, int]] = []
        spy = None
        out = infra.log_dir / f"refresher-py-spy-{processes}.raw"
        started = time.monotonic()
        with CpuWatch(pids) as watch:
            while True:
                count = await stack.db[PROCESSED_EVENTS].count_documents({})
                samples.append((time.monotonic(), count))
                if profile and spy is None and count > 0:
                    spy = await profiling.record(procs[0].pid, 3, out)
                if count >= events:
                    break
                stack.check_alive()
                if time.monotonic() - started > 180:
                    raise TimeoutError(f"{processes} refresher(s) did not drain {events} events")
                await asyncio.sleep(0.05)
            await wait_until(lambda: drained(stack, events), timeout=60, what="tickets completed")
        finished = time.monotonic()
        low = next(t for t, count in samples if count >= 0.1 * events)
        high = next(t for t, count in samples if count >= 0.9 * events)
        rate = 0.8 * events / max(1e-3, high - low)
        first = next(t for t, count in samples if count > 0)
        calls = await sandbox.calls()
        outcome = {
            "events_per_second": round(rate, 1),
            "drain_seconds": round(finished - first, 2),
            "wall_get_calls": sum(1 for call in calls if call["method"] == "wall.get"),
            "error_6": sum(1 for call in calls if call["error_code"] == 6),
            "cpu": watch.report(),
        }
        if spy is not None:
            outcome["profile"] = await profiling.collect(spy, out)
        return outcome
    finally:
        for proc in procs:
            await stack.stop_proc(proc)


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    events = mode.pick(2400, 300)
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    stack = Stack(infra, NAME)
    try:
        sandbox = await stack.start_sandbox()
        await stack.prepare_db()
        projects = await stack.add_projects(sandbox, PROJECTS, wall_posts=mode.pick(20, 5))
        for rep in range(mode.pick(2, 1)):
            for processes in ((1, 2) if rep % 2 == 0 else (2, 1)):
                outcome = await one_run(stack, sandbox, projects, processes, events,
                                        profile=not mode.quick and rep == 0 and processes == 1)
                runs[processes].append(outcome)
                log(f"scaling: {processes} refresher(s): {outcome['events_per_second']:.0f} "
                    f"events/s, drained in {outcome['drain_seconds']}s, "
                    f"{outcome['wall_get_calls']} wall.get")
    finally:
        await stack.close()
    one = [float(outcome["events_per_second"]) for outcome in runs[1]]
    two = [float(outcome["events_per_second"]) for outcome in runs[2]]
    result.add(Figure("events_per_second_2_procs", f"events/s, 2 refreshers ({events} events)",
                      "ev/s", two, "1 refresher", one))
    result.add(Figure("drain_seconds_2_procs", "drain time, 2 refreshers", "s",
                      [float(outcome["drain_seconds"]) for outcome in runs[2]], "1 refresher",
                      [float(outcome["drain_seconds"]) for outcome in runs[1]]))
    result.details = {"events": events, "projects": PROJECTS,
                      "runs": {str(key): value for key, value in runs.items()}}
    return result
