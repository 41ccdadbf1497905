"""5. Verification economy: VK calls for one verification cycle of 1000 ``publishing`` posts.

1000 system posts over 50 projects are ``publishing``: each was "sent" (it is on its
community's wall in the sandbox, with 5 older posts beneath) and has its
``vk_post_id``, as the tracker leaves them after ``wall.post``. A fresh ``post_tracker``
process starts (its first cycle plans verification of every project with
``publishing`` posts) and runs until every post is verified (deleted). The sandbox's
call log gives the VK calls that took, by method.

Baseline: one call per post (e.g. ``wall.getById`` per post): 1000. Target: at most
one call per project.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from bench.figures import BenchResult, Figure, Target
from bench.infrastructure import BenchSize, Infra
from bench.processes import wait_until
from bench.report import log
from bench.stack import BenchProject, Stack
from shared.mongo import POST_TRACKER_LEASES, SYSTEM_POSTS
from tools.vk_sandbox.control import SandboxControl

NAME = "verification"
TITLE = "Verification economy: VK calls per cycle"


async def wall_of_posts(sandbox: SandboxControl, project: BenchProject, count: int
                        ) -> list[tuple[int, str]]:
    made = []
    for index in range(count):
        text = f"system post {project.id}-{index}"
        post = await sandbox.create_post(project.group_id, text)
        made.append((int(post["id"]), text))
    return made


def publishing_post(project: BenchProject, post_id: int, text: str) -> dict[str, Any]:
    claimed = datetime.now(UTC) - timedelta(seconds=5)
    return {"_id": ObjectId(), "project_id": project.id, "text": text, "attachments": [],
            "publication_date": claimed - timedelta(seconds=1), "status": "publishing",
            "vk_post_id": post_id, "error": None, "claimed_by": "bench:0:tracker",
            "claimed_at": claimed.replace(microsecond=claimed.microsecond // 1000 * 1000),
            "sent_text": text, "correlation_id": uuid.uuid4().hex, "published_at": claimed}


async def run(infra: Infra, mode: BenchSize) -> BenchResult:
    result = BenchResult(NAME, TITLE)
    stack = Stack(infra, NAME)
    try:
        sandbox = await stack.start_sandbox()
        await stack.prepare_db()
        projects_count, per_project = mode.pick((50, 20), (10, 10))
        projects = await stack.add_projects(sandbox, projects_count, secret=False, wall_posts=5)
        walls = {project.id: await wall_of_posts(sandbox, project, per_project)
                 for project in projects}
        total = projects_count * per_project
        calls_per_cycle: list[float] = []
        seconds: list[float] = []
        by_method: list[dict[str, int]] = []
        for rep in range(mode.pick(3, 1)):
            await stack.db[SYSTEM_POSTS].insert_many([
                publishing_post(project, post_id, text)
                for project in projects for post_id, text in walls[project.id]])
            # A fresh cycle: forget when walls were last looked at.
            await stack.db[POST_TRACKER_LEASES].delete_many({})
            await sandbox.clear_calls()
            started = time.monotonic()
            tracker = await stack.start_service("post_tracker", label=f"post_tracker{rep}")
            await wait_until(
                lambda: _all_verified(stack), timeout=120, interval=0.1, what="all verified")
            seconds.append(time.monotonic() - started)
            await stack.stop_proc(tracker)
            calls = await sandbox.calls()
            methods: dict[str, int] = {}
            for call in calls:
                methods[call["method"]] = methods.get(call["method"], 0) + 1
            by_method.append(methods)
            calls_per_cycle.append(float(len(calls)))
            log(f"verification {rep + 1}: {total} posts verified with {len(calls)} VK calls "
                f"{methods} in {seconds[-1]:.1f}s (incl. tracker start)")
        result.add(Figure("vk_calls_per_cycle", f"VK calls to verify {total} posts, "
                          f"{projects_count} projects", "calls", calls_per_cycle,
                          "one call per post", [float(total)], Target("<=", float(projects_count))))
        result.add(Figure("verify_seconds", "tracker start → all verified", "s", seconds))
        result.details = {"posts": total, "projects": projects_count,
                          "calls_by_method": by_method}
        return result
    finally:
        await stack.close()


async def _all_verified(stack: Stack) -> bool:
    return await stack.db[SYSTEM_POSTS].count_documents({"status": "publishing"}) == 0
