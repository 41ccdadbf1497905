"""4. Publishing punctuality and backlog: the ``post_tracker`` process against the VK sandbox.

* **Punctuality**: 500 ``pending_publication`` system posts over 50 projects (each with
  its own admin token), due at random (seeded) moments within one minute starting a
  few seconds after they are inserted. Lateness of each post = the moment the sandbox
  received its ``wall.post`` (call log) − its ``publication_date``; p50/p99/max.
  Baseline: the seed's 50-s sweep, on the same posts: a sweep clock with a random phase
  sends a post at the first sweep after its date (plus the lateness measured here).
* **Backlog**: 3000 posts already overdue over 100 projects, inserted at once while the
  tracker runs. Drain time = insert → last ``wall.post``; the floor VK's rate limit sets
  is set by posts per token at 3 requests/s: VK admits 3 calls in any 1-s window, so
  n posts of one token need (⌈n/3⌉ − 1) s, every project in parallel (≈ n/3 s for a
  large n). Error-6 answers counted. The full run drains the same backlog once more
  with the tracker working on 32 projects at once (``TRACKER_MAX_PARALLEL_PROJECTS``,
  128 by default; 32 was the earlier default), to show what that knob is worth.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from bench.figures import BenchResult, Figure, Target, distribution, percentile
from bench.infrastructure import BenchSize, Infra
from bench.processes import BenchService, CpuWatch, wait_until
from bench.report import log
from bench.stack import BenchProject, Stack
from shared.documents import PostStatus
from shared.mongo import SYSTEM_POSTS
from tools.vk_sandbox.control import SandboxControl

NAME = "publishing"
TITLE = "Publishing punctuality (posts due within a minute) and backlog drain"
USER_RPS = 3.0
SEED_SWEEP_SECONDS = 50.0
NARROW_PARALLEL = 32


def system_post(project: BenchProject, key: str, due: datetime) -> dict[str, Any]:
    """A post as the product writes it (README, data contract)."""
    return {"_id": ObjectId(), "project_id": project.id, "text": f"bench {key}",
            "attachments": [], "publication_date": due, "status": PostStatus.PENDING,
            "vk_post_id": None, "error": None}


async def wall_posts(sandbox: SandboxControl) -> list[dict[str, Any]]:
    return await sandbox.calls("wall.post")


async def wait_for_posts(sandbox: SandboxControl, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        calls = await wall_posts(sandbox)
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        await asyncio.sleep(0.25)


async def all_verified(stack: Stack) -> bool:
    return await stack.db[SYSTEM_POSTS].count_documents({}) == 0


async def punctuality(stack: Stack, sandbox: SandboxControl, tracker: BenchService,
                      projects: list[BenchProject], mode: BenchSize) -> dict[str, Any]:
    infra = stack.infra
    projects_count = len(projects)
    posts, window, lead = mode.pick((500, 60.0, 5.0), (30, 2.0, 1.0))
    rng = random.Random(4)
    start = datetime.now(UTC) + timedelta(seconds=lead)
    documents = []
    due_at: dict[str, float] = {}
    for index in range(posts):
        due = start + timedelta(seconds=rng.uniform(0, window))
        due = due.replace(microsecond=due.microsecond // 1000 * 1000)  # BSON keeps ms
        key = f"due-{index}"
        documents.append(system_post(projects[index % projects_count], key, due))
        due_at[f"bench {key}"] = due.timestamp()
    pids = {"post_tracker": tracker.pid, "vk_sandbox": stack.sandbox_proc.pid,
            "mongod": infra.mongod_pid, "rabbitmq": infra.rabbit_pid() or 0}
    with CpuWatch(pids) as watch:
        await stack.db[SYSTEM_POSTS].insert_many(documents)
        calls = await wait_for_posts(sandbox, posts, lead + window + 60)
    sent = [(call["at"], due_at[call["params"]["message"]]) for call in calls
            if call["params"].get("message") in due_at and call["error_code"] is None]
    lateness = [at - due for at, due in sent]
    # The seed's sweep: every 50 s from a random phase; a post waits for the next one.
    phase = rng.uniform(0, SEED_SWEEP_SECONDS)
    seed = [at - due + (phase - due) % SEED_SWEEP_SECONDS for at, due in sent]
    all_calls = await sandbox.calls()
    # The next part starts once these are verified (off the tracker's hands).
    await wait_until(lambda: all_verified(stack), timeout=60, interval=0.2, required=False)
    return {"posts": posts, "projects": projects_count, "window_seconds": window,
            "sent": len(lateness), "lateness": lateness, "seed": seed,
            "error_6": sum(1 for call in all_calls if call["error_code"] == 6),
            "cpu": watch.report()}


async def backlog(stack: Stack, sandbox: SandboxControl, tracker: BenchService,
                  projects: list[BenchProject], mode: BenchSize, tag: str = "") -> dict[str, Any]:
    infra = stack.infra
    await sandbox.clear_calls()
    await asyncio.sleep(1.1)  # VK's 1-s window of earlier calls with these tokens
    projects_count = len(projects)
    posts = mode.pick(3000, 60)
    overdue = datetime.now(UTC) - timedelta(minutes=5)
    documents = [system_post(projects[index % projects_count], f"backlog{tag}-{index}",
                             overdue + timedelta(milliseconds=index))
                 for index in range(posts)]
    pids = {"post_tracker": tracker.pid, "vk_sandbox": stack.sandbox_proc.pid,
            "mongod": infra.mongod_pid, "rabbitmq": infra.rabbit_pid() or 0}
    with CpuWatch(pids) as watch:
        inserted_at = time.time()
        await stack.db[SYSTEM_POSTS].insert_many(documents)
        calls = await wait_for_posts(sandbox, posts, 600)
        sent_at = max(call["at"] for call in calls) if calls else float("nan")
        await wait_until(lambda: all_verified(stack), timeout=120, interval=0.5,
                         required=False)
        verified_at = time.time()
    all_calls = await sandbox.calls()
    per_token = math.ceil(posts / projects_count)
    return {"posts": posts, "projects": projects_count, "sent": len(calls),
            "drain_seconds": sent_at - inserted_at,
            "all_verified_seconds": verified_at - inserted_at,
            # VK admits 3 calls in any 1-s window: batches of 3, one second apart.
            "floor_seconds": (math.ceil(per_token / USER_RPS) - 1) * 1.0,
            "error_6": sum(1 for call in all_calls if call["error_code"] == 6),
            "vk_calls": {method: sum(1 for call in all_calls if call["method"] == method)
                         for method in sorted({call["method"] for call in all_calls})},
            "cpu": watch.report()}


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    try:
        sandbox = await stack.start_sandbox()
        await stack.prepare_db()
        due_projects, backlog_projects = mode.pick((50, 100), (10, 10))
        projects = await stack.add_projects(sandbox, due_projects + backlog_projects,
                                            secret=False)
        tracker = await stack.start_service("post_tracker")
        due = await punctuality(stack, sandbox, tracker, projects[:due_projects], mode)
        drained = await backlog(stack, sandbox, tracker, projects[due_projects:], mode)
        narrow: dict[str, Any] | None = None
        if not mode.quick:
            # The same backlog with the tracker working on fewer projects at once: what
            # the knob that limits the drain is worth.
            await stack.stop_proc(tracker)
            tracker = await stack.start_service(
                "post_tracker", label=f"post_tracker_parallel{NARROW_PARALLEL}",
                TRACKER_MAX_PARALLEL_PROJECTS=str(NARROW_PARALLEL))
            narrow = await backlog(stack, sandbox, tracker, projects[due_projects:], mode,
                                   tag="-narrow")
    finally:
        await stack.close()
    return report(result, due, drained, narrow)


def report(result: BenchResult, due: dict[str, Any], drained: dict[str, Any],
           narrow: dict[str, Any] | None) -> BenchResult:
    log(f"publishing: {due['sent']}/{due['posts']} sent; lateness {distribution(due['lateness'])}")
    lateness, seed = due["lateness"], due["seed"]
    for quantile, label in ((50, "p50"), (99, "p99"), (100, "max")):
        result.add(Figure(f"lateness_{label}", f"lateness {label}, {due['posts']} posts due in "
                          f"{due['window_seconds']:g}s", "s", [percentile(lateness, quantile)],
                          "seed: 50-s sweep", [percentile(seed, quantile)],
                          Target("<=", 1.0) if quantile == 99 else None))
    log(f"publishing: backlog of {drained['posts']} sent in {drained['drain_seconds']:.1f}s "
        f"(floor {drained['floor_seconds']:.1f}s), verified in {drained['all_verified_seconds']:.1f}s")
    result.add(Figure("backlog_drain_seconds", f"drain {drained['posts']} overdue posts, "
                      f"{drained['projects']} projects", "s", [drained["drain_seconds"]],
                      f"rate-limit floor ({drained['posts'] // drained['projects']}/token, 3 per s)",
                      [drained["floor_seconds"]]))
    if narrow is not None:
        log(f"publishing: backlog with {NARROW_PARALLEL} projects at once: "
            f"{narrow['drain_seconds']:.1f}s")
        result.add(Figure(f"backlog_drain_seconds_parallel{NARROW_PARALLEL}",
                          f"same drain, tracker on {NARROW_PARALLEL} projects at once", "s",
                          [narrow["drain_seconds"]], "as is (128 at once)",
                          [drained["drain_seconds"]]))
    errors = due["error_6"] + drained["error_6"] + (narrow["error_6"] if narrow else 0)
    result.add(Figure("error_6", "error 6 answers (all runs)", "answers", [float(errors)],
                      None, None, Target("<=", 0.0)))
    result.details = {
        "punctuality": {key: value for key, value in due.items() if key not in ("lateness", "seed")}
        | {"lateness_seconds": distribution(lateness), "seed_lateness_seconds": distribution(seed)},
        "backlog": drained,
        f"backlog_parallel{NARROW_PARALLEL}": narrow,
        "repetitions": "1 (a run is one minute of posts; p99/max are over all its posts)",
    }
    return result
