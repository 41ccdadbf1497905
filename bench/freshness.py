"""3. Freshness: callback arrival at the gateway → the project on the notifier's SSE stream
and in cursor polling, at a steady 200 callbacks/s with VK answering in 50 ms.

Gateway, refresher and notifier run as processes; the sandbox answers every API call
50 ms late (``inject_fault("latency", seconds=0.05)``). A driver, open loop at a fixed
rate over 10 projects, creates a post on a community's wall (sandbox control API, no
callback server registered, so the sandbox itself sends nothing) and then POSTs the
matching ``wall_post_new`` callback to the gateway: that moment is the callback's
arrival. Two observers run meanwhile: an SSE client on ``/api/updates/stream`` and a
cursor poller (``getUpdates`` every 0.25 s). Whenever one of them learns that project
*p* was updated, the benchmark reads *p*'s cached published posts from MongoDB; every
sent callback whose post is now in the cache gets its freshness: observation time −
arrival time. (A refresh round of a key starts at least 0.3 s after the previous one,
longer than notification takes, so the cache read cannot see a later round's posts.)

Baseline: the seed's design, where the frontend learnt of changes by polling every 5 s:
each measured SSE freshness plus a uniform 0–5 s wait for the next poll (seeded, so the
figure is reproducible from the same samples). The full run repeats the measurement at
50 callbacks/s (the same pipeline when the machine is not saturated), and at 200/s with a
refresher whose rounds are a fixed 1 s apart, which met the burst benchmark's VK-call
target before spacing was adaptive: what that costs in freshness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench import profiling
from bench.figures import BenchResult, Figure, Target, distribution, percentile
from bench.infrastructure import BenchSize, Infra
from bench.processes import CpuWatch, wait_until
from bench.report import log
from bench.stack import BenchProject, Stack, callback_body, fixed_spacing, round_spacing
from shared.mongo import ContentType
from tools.vk_sandbox.control import SandboxControl

NAME = "freshness"
TITLE = "Freshness at 200 callbacks/s, VK latency 50 ms"
PROJECTS = 10
VK_LATENCY = 0.05
POLL_INTERVAL = 0.25
SEED_POLL_SECONDS = 5.0
LIGHT_RATE = 50.0
SLOW_ROUNDS = 1.0
CHANNELS = ("sse", "poll")


@dataclass
class Sent:
    project_id: str
    post_id: int
    at: float
    window: int  # -1: warm-up


class Observations:
    """Sent callbacks waiting to be seen, per channel and project; freshness samples."""

    def __init__(self, stack: Stack, windows: int) -> None:
        self._cache = stack.db[ContentType.PUBLISHED.collection]
        self.queues: dict[str, asyncio.Queue[tuple[float, str]]] = {
            channel: asyncio.Queue() for channel in CHANNELS}
        self.new_phase(windows)

    def new_phase(self, windows: int) -> None:
        """Forget what was sent and measured so far (the observers keep running)."""
        self.pending: dict[str, dict[str, dict[int, Sent]]] = {
            channel: defaultdict(dict) for channel in CHANNELS}
        self.samples: dict[str, list[list[float]]] = {
            channel: [[] for _ in range(windows)] for channel in CHANNELS}
        self.events = dict.fromkeys(CHANNELS, 0)

    def sent(self, item: Sent) -> None:
        for channel in CHANNELS:
            self.pending[channel][item.project_id][item.post_id] = item

    def waiting(self, measured_only: bool = True) -> int:
        return sum(1 for channel in CHANNELS for items in self.pending[channel].values()
                   for item in items.values() if not measured_only or item.window >= 0)

    async def resolve(self, channel: str) -> None:
        """One consumer per channel, in arrival order: attribute posts now in the cache."""
        queue = self.queues[channel]
        while True:
            seen_at, project_id = await queue.get()
            self.events[channel] += 1
            waiting = self.pending[channel].get(project_id)
            if not waiting:
                continue
            cached = {doc["vk_post_id"] async for doc in self._cache.find(
                {"project_id": project_id}, projection={"vk_post_id": 1})}
            for post_id in [post_id for post_id in waiting if post_id in cached]:
                item = waiting.pop(post_id)
                if item.window >= 0:
                    self.samples[channel][item.window].append(seen_at - item.at)


async def follow_sse(url: str, observations: Observations, ready: asyncio.Event) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        event = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "ready":
                    ready.set()
            elif line.startswith("data:") and event == "update":
                project_id = json.loads(line[5:])["projectId"]
                observations.queues["sse"].put_nowait((time.monotonic(), project_id))


async def poll_cursor(url: str, observations: Observations) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"cursor": None}) as response:
            cursor = (await response.json())["cursor"]
        next_at = time.monotonic()
        while True:
            next_at += POLL_INTERVAL
            async with session.post(url, json={"cursor": cursor}) as response:
                answer = await response.json()
            seen_at = time.monotonic()
            cursor = answer["cursor"]
            for project_id in answer["updatedProjectIds"]:
                observations.queues["poll"].put_nowait((seen_at, project_id))
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def drive(control: SandboxControl, gateway_url: str, projects: list[BenchProject],
                observations: Observations, rate: float, warmup: float, window: float,
                windows: int) -> dict[str, Any]:
    """Open loop: callback i is due at start + i / rate, whatever earlier ones are doing."""
    total = int(rate * (warmup + window * windows))
    ack_latencies: list[float] = []
    failures = 0
    lags: list[float] = []
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(index: int, due: float) -> None:
            nonlocal failures
            project = projects[index % len(projects)]
            offset = due - start
            slot = -1 if offset < warmup else min(windows - 1, int((offset - warmup) // window))
            try:
                post = await control.create_post(project.group_id, f"fresh {index}")
                body = callback_body(project, index, post=post)
                arrived = time.monotonic()
                observations.sent(Sent(project.id, int(post["id"]), arrived, slot))
                async with session.post(gateway_url, json=body) as response:
                    text = await response.text()
                ack_latencies.append(time.monotonic() - arrived)
                if response.status != 200 or text != "ok":
                    failures += 1
            except (aiohttp.ClientError, OSError):
                failures += 1

        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic() + 0.05
        for index in range(total):
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(time.monotonic() - due)
            task = asyncio.create_task(one(index, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    return {"sent": total, "failures": failures, "seconds": round(time.monotonic() - start, 2),
            "gateway_ack_ms": distribution(ack_latencies, 1000),
            "driver_dispatch_lag_ms": distribution(lags, 1000)}


async def settle(observations: Observations) -> dict[str, int]:
    """Wait (≤ 10 s) for the stragglers; how many measured callbacks were never seen."""
    async def all_seen() -> bool:
        return observations.waiting() == 0

    await wait_until(all_seen, timeout=10, required=False)
    return {channel: sum(1 for items in observations.pending[channel].values()
                         for item in items.values() if item.window >= 0)
            for channel in CHANNELS}


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    tasks: list[asyncio.Task[None]] = []
    try:
        sandbox = await stack.start_sandbox()
        await stack.prepare_db()
        projects = await stack.add_projects(sandbox, PROJECTS, wall_posts=5)
        gateway, refresher, notifier = await asyncio.gather(
            stack.start_service("callback_gateway"), stack.start_service("refresher"),
            stack.start_service("update_notifier"))
        await sandbox.inject_fault("latency", method=None, seconds=VK_LATENCY)
        rate = 200.0
        warmup, window, windows = mode.pick((2.0, 8.0, 3), (0.5, 2.0, 1))
        observations = Observations(stack, windows)
        ready = asyncio.Event()
        tasks = [asyncio.create_task(follow_sse(f"{notifier.base_url}/api/updates/stream",
                                                observations, ready)),
                 asyncio.create_task(poll_cursor(f"{notifier.base_url}/api/getUpdates",
                                                 observations)),
                 *(asyncio.create_task(observations.resolve(channel)) for channel in CHANNELS)]
        await asyncio.wait_for(ready.wait(), 10)
        pids = {"gateway": gateway.pid, "refresher": refresher.pid, "notifier": notifier.pid,
                "vk_sandbox": stack.sandbox_proc.pid, "mongod": infra.mongod_pid,
                "rabbitmq": infra.rabbit_pid() or 0}
        profile_out = infra.log_dir / "freshness-refresher-py-spy.raw"
        spy = None
        if not mode.quick:  # the refresher, for a few seconds in the middle of the run
            async def profile_later() -> Any:
                await asyncio.sleep(warmup + window)
                return await profiling.record(refresher.pid, 4, profile_out)
            spy_task = asyncio.create_task(profile_later())
        with CpuWatch(pids) as watch:
            driven = await drive(sandbox, f"{gateway.base_url}/api/callback", projects,
                                 observations, rate, warmup, window, windows)
        if not mode.quick:
            spy = await spy_task
        unobserved = await settle(observations)
        rng = random.Random(6)
        for channel, label in (("sse", "SSE"), ("poll", f"cursor poll every {POLL_INTERVAL:g}s")):
            per_window = [samples for samples in observations.samples[channel] if samples]
            seed = [[value + rng.uniform(0, SEED_POLL_SECONDS) for value in samples]
                    for samples in per_window]
            for quantile in (50, 99):
                result.add(Figure(
                    f"{channel}_p{quantile}", f"callback → project id via {label}, p{quantile}", "s",
                    [percentile(samples, quantile) for samples in per_window],
                    "seed: + poll every 5 s", [percentile(samples, quantile) for samples in seed],
                    Target("<=", 1.0) if quantile == 99 else None))
            log(f"freshness {channel}: " + ", ".join(
                f"window {number}: {distribution(samples)}"
                for number, samples in enumerate(per_window)))
        refresh_seconds = distribution(refresher.logged("refresh_done", "seconds"))
        notifications = dict(observations.events)
        overall = {channel: distribution([value for window_samples in observations.samples[channel]
                                          for value in window_samples]) for channel in CHANNELS}
        light: dict[str, Any] = {"skipped": "quick mode"}
        slow: dict[str, Any] = {"skipped": "quick mode"}
        observations_as_is = {channel: list(observations.samples[channel])
                              for channel in CHANNELS}
        if not mode.quick:
            # The same pipeline at a quarter of the load: what it takes when not saturated.
            observations.new_phase(1)
            with CpuWatch(pids) as light_watch:
                light_driven = await drive(sandbox, f"{gateway.base_url}/api/callback",
                                           projects, observations, LIGHT_RATE, 1.0, window, 1)
            light = {"rate_per_second": LIGHT_RATE, "driver": light_driven,
                     "unobserved_callbacks": await settle(observations),
                     "cpu": light_watch.report()}
            for channel in CHANNELS:
                measured = observations.samples[channel][0]
                light[channel] = distribution(measured)
                result.add(Figure(f"{channel}_p99_at_{LIGHT_RATE:g}",
                                  f"same via {channel.upper()}, p99 at {LIGHT_RATE:g}/s", "s",
                                  [percentile(measured, 99)], None, None))
            # Before adaptive spacing, the burst benchmark's VK-call target needed rounds of
            # every key at least 1 s apart: what that fixed spacing costs in freshness.
            await stack.stop_proc(refresher)
            await stack.start_service("refresher", label="refresher_round1s",
                                      **fixed_spacing(SLOW_ROUNDS))
            observations.new_phase(1)
            slow_driven = await drive(sandbox, f"{gateway.base_url}/api/callback", projects,
                                      observations, rate, warmup, window, 1)
            slow = {"fixed_spacing_seconds": SLOW_ROUNDS, "driver": slow_driven,
                    "unobserved_callbacks": await settle(observations)}
            for channel in CHANNELS:
                measured = observations.samples[channel][0]
                slow[channel] = distribution(measured)
                as_is = [value for samples in observations_as_is[channel] for value in samples]
                result.add(Figure(f"{channel}_p99_round_1s",
                                  f"same via {channel.upper()}, p99, "
                                  f"fixed {SLOW_ROUNDS:g}-s round spacing", "s",
                                  [percentile(measured, 99)], "adaptive spacing",
                                  [percentile(as_is, 99)], Target("<=", 1.0)))
        result.details = {
            "rate_per_second": rate, "projects": PROJECTS, "vk_latency_seconds": VK_LATENCY,
            "warmup_seconds": warmup, "window_seconds": window, "windows": windows,
            "poll_interval_seconds": POLL_INTERVAL, "driver": driven,
            "unobserved_callbacks": unobserved, "notifications_seen": notifications,
            "all_samples_seconds": overall, "cpu": watch.report(),
            "round_spacing": round_spacing(stack.settings()),
            "refresh_seconds_during_200_per_second": refresh_seconds,
            "at_light_load": light,
            "rounds_1s_apart": slow,
            "refresher_profile": (await profiling.collect(spy, profile_out)
                                  if spy is not None else {"skipped": "quick mode"}),
        }
        return result
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await stack.close()
