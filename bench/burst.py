"""2. VK economy under bursts: 1000 callbacks over 10 projects within ~2 s.

The VK sandbox's own Callback API sender (``send_callbacks``) delivers ``wall_post_new``
events to the gateway (connected with the real confirmation handshake), in 10 batches
of 100 spread over 2 s, 100 events per project; one refresher process runs. When every
delivery got ``ok`` and every refresh ticket is completed, the sandbox's call log says
how many ``wall.get`` calls VK saw and how many answers were error 6 (too many requests).

Baseline: the seed's design, one full refresh per callback: 1000 ``wall.get`` calls, and
at VK's 3 requests/s per user token at least 100 / 3 ≈ 33 s per project to serve them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.figures import BenchResult, Figure, Target, distribution
from bench.infrastructure import BenchSize, Infra
from bench.processes import wait_until
from bench.report import log
from bench.stack import BenchProject, Stack, connect_callbacks, fixed_spacing, round_spacing
from shared.mongo import PROCESSED_EVENTS, REFRESH_STATE
from tools.vk_sandbox.control import SandboxControl

NAME = "burst"
TITLE = "VK economy under a callback burst (10 projects)"
PROJECTS = 10
BATCHES = 10
USER_RPS = 3.0


async def settled(stack: Stack, sandbox: SandboxControl, expected_events: int) -> bool:
    if await stack.db[PROCESSED_EVENTS].count_documents({}) < expected_events:
        return False
    async for state in stack.db[REFRESH_STATE].find({}):
        if state["requested"] != state["completed"] or state.get("lease_owner") is not None:
            return False
    deliveries = await sandbox.deliveries()
    return all(delivery["delivered"] or delivery["gave_up"] for delivery in deliveries)


async def send_burst(sandbox: SandboxControl, projects: list[BenchProject], per_project: int,
                     spread: float) -> float:
    """Send the burst in BATCHES evenly over ``spread`` seconds; return when the last went."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    for index in range(per_project):
        for project in projects:
            post = {"id": 100_000 + index, "owner_id": -project.group_id,
                    "from_id": -project.group_id, "date": int(time.time()),
                    "text": f"burst {index}", "post_type": "post"}
            events.append((project.group_id, "wall_post_new", post))
    size = -(-len(events) // BATCHES)
    started = time.monotonic()
    for batch in range(BATCHES):
        await asyncio.sleep(max(0.0, started + batch * spread / BATCHES - time.monotonic()))
        await sandbox.send_callbacks(events[batch * size:(batch + 1) * size])
    return time.monotonic() - started


class Bursts:
    """Bursts sent one after another into the same stack, and what each cost."""

    def __init__(self, stack: Stack, sandbox: SandboxControl, projects: list[BenchProject],
                 per_project: int, spread: float) -> None:
        self.stack, self.sandbox, self.projects = stack, sandbox, projects
        self.per_project, self.spread = per_project, spread
        self.total = per_project * len(projects)
        self._expected = 0
        self._fences = 0

    async def run(self, label: str) -> dict[str, float]:
        await self.sandbox.clear_calls()
        await self.sandbox.clear_deliveries()
        self._expected += self.total
        expected = self._expected
        started = time.monotonic()
        sent_in = await send_burst(self.sandbox, self.projects, self.per_project, self.spread)
        await wait_until(lambda: settled(self.stack, self.sandbox, expected), timeout=120,
                         interval=0.1, what="burst settled")
        settle = time.monotonic() - started
        calls = await self.sandbox.calls()
        fences = sum([int(state["fence"])
                      async for state in self.stack.db[REFRESH_STATE].find({})])
        outcome = {"sent_in_seconds": round(sent_in, 2), "settle_seconds": settle,
                   "wall_get": float(sum(1 for call in calls if call["method"] == "wall.get")),
                   "error_6": float(sum(1 for call in calls if call["error_code"] == 6)),
                   "rounds_per_project": (fences - self._fences) / len(self.projects)}
        self._fences = fences
        log(f"burst ({label}): {self.total} callbacks sent in {sent_in:.2f}s → "
            f"{outcome['wall_get']:.0f} wall.get, {outcome['error_6']:.0f} error 6, "
            f"settled in {settle:.2f}s")
        await asyncio.sleep(1.1)  # VK's 1-s window, before the next burst
        return outcome


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    try:
        sandbox = await stack.start_sandbox()
        await stack.prepare_db()
        projects = await stack.add_projects(sandbox, PROJECTS, wall_posts=mode.pick(20, 5))
        gateway, refresher = await asyncio.gather(stack.start_service("callback_gateway"),
                                                  stack.start_service("refresher"))
        await connect_callbacks(stack, projects, f"{gateway.base_url}/api/callback")
        per_project = mode.pick(100, 30)
        bursts = Bursts(stack, sandbox, projects, per_project, mode.pick(2.0, 1.0))
        runs = [await bursts.run("as is") for _ in range(mode.pick(3, 1))]
        refresh_seconds = distribution(refresher.logged("refresh_done", "seconds"))
        slower: list[dict[str, float]] = []
        if not mode.quick:
            # Before adaptive spacing: every key's rounds a fixed 0.5 s apart.
            await stack.stop_proc(refresher)
            await stack.start_service("refresher", label="refresher_fixed05s",
                                      **fixed_spacing(0.5))
            slower = [await bursts.run("fixed 0.5-s spacing") for _ in range(2)]

        def values(outcomes: list[dict[str, float]], key: str) -> list[float]:
            return [outcome[key] for outcome in outcomes]

        total = bursts.total
        result.add(Figure("wall_get_calls", f"wall.get calls for {total} callbacks", "calls",
                          values(runs, "wall_get"), "seed: 1 refresh per callback",
                          [float(total)], Target("<=", 40.0)))
        result.add(Figure("error_6", "error 6 answers", "answers", values(runs, "error_6"),
                          "seed (1 per callback at 3/s per token: needs 33 s/project)", [0.0],
                          Target("<=", 0.0)))
        result.add(Figure("settle_seconds", "burst start → every refresh done", "s",
                          values(runs, "settle_seconds"),
                          f"seed: {per_project} refreshes per token at {USER_RPS:g}/s",
                          [per_project / USER_RPS]))
        if slower:
            result.add(Figure("wall_get_calls_fixed_05s",
                              "wall.get calls, fixed 0.5-s round spacing (before)", "calls",
                              values(slower, "wall_get"), "adaptive spacing",
                              values(runs, "wall_get"), None))
        result.details = {
            "callbacks": total, "projects": PROJECTS, "spread_seconds": bursts.spread,
            "runs": runs, "runs_fixed_spacing_05s": slower,
            "round_spacing": round_spacing(stack.settings()),
            "refresh_seconds": refresh_seconds,
        }
        return result
    finally:
        await stack.close()
