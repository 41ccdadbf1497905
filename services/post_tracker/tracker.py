"""The tracker: when to publish and verify, for which projects, how many at once.

One loop per tracker instance (any number of instances, in any number of processes):

* **Schedule.** Each cycle reads which projects have due posts (oldest due first)
  and, once per ``interval_seconds``, which have ``publishing`` posts not looked at
  within the interval by anyone, and sets pending posts that can never become due (no
  usable ``project_id``, a ``publication_date`` that is not a date) to ``error`` with
  the reason. It starts a *project run* for each, up to
  ``max_parallel_projects`` at once. Then it sleeps until the next post becomes due
  (sub-second punctual), the next cycle, or an early wake-up
  (:mod:`services.post_tracker.wakeup`, or a run ending), whichever comes first.
* **Project run.** Takes the project's lease (:mod:`services.post_tracker.leases`;
  held elsewhere → skipped and looked at again shortly), then sends the project's due
  posts oldest first, one claim at a time (:mod:`services.post_tracker.publisher`), at
  the VK client's per-token rate. Every ``verify_every_sent`` posts, and once at the
  end, it looks at the wall (:mod:`services.post_tracker.verifier`), so verification
  keeps pace with a backlog instead of waiting for it to be sent; posts whose outcome
  was unknown and that the look did not find are re-sent with their guid. A run
  started for due posts that found none leaves the project alone for
  ``busy_recheck_seconds``, so a post the schedule sees but the run cannot take never
  turns into a busy loop.
* **Stop.** No new claims; runs finish the post in hand (its ``wall.post`` and the
  record of the outcome) within ``stop_grace_seconds``, after which they are cancelled —
  a post cancelled mid-call stays ``publishing`` for verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import datetime, timedelta
from functools import partial

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from services.post_tracker import metrics
from services.post_tracker.announcer import Announcer, UpdatePublisher
from services.post_tracker.decisions import ProjectRead
from services.post_tracker.leases import ProjectLeases
from services.post_tracker.options import TrackerOptions
from services.post_tracker.publisher import Publisher, PublishStep
from services.post_tracker.store import PostStore
from services.post_tracker.verifier import Verifier
from services.post_tracker.wakeup import WAKE_PIPELINE
from shared.change_stream import stop_following
from shared.change_wakeup import ChangeWakeup
from shared.clock import WallClock, utc_now
from shared.documents import BsonId, Project, count_by_status, id_label
from shared.leases import Lease, process_owner
from shared.mongo import SYSTEM_POSTS, Document
from shared.tasks import cancel_and_wait
from shared.vk import VkClient

log = structlog.get_logger(__name__)

# Waking a hair after a due date, so the post is due when looked for.
_PAST_DUE = 0.001
# A verified look counts for the whole interval if it happened within this share of it.
_RECENT_SHARE = 0.8


def _order(project_id: BsonId) -> tuple[str, str]:
    """A stable order over ids of different BSON types (they do not compare)."""
    return type(project_id).__name__, id_label(project_id)


def default_instance_id() -> str:
    """This process (:func:`process_owner`) and a random part: unique to this tracker."""
    return f"{process_owner()}:{uuid.uuid4().hex[:6]}"


class Tracker:
    def __init__(self, db: AsyncDatabase[Document], vk: VkClient, broker: UpdatePublisher,
                 options: TrackerOptions, *, instance_id: str | None = None,
                 clock: WallClock = utc_now) -> None:
        self.instance_id = instance_id or default_instance_id()
        self.options = options
        self._clock = clock
        self._store = PostStore(db, self.instance_id)
        self._leases = ProjectLeases(db, self.instance_id, options.lease_seconds)
        self._announcer = Announcer(broker)
        self._publisher = Publisher(self._store, vk, self._announcer, options.retry, clock)
        self._verifier = Verifier(self._store, vk, self._announcer,
                                  timeout_seconds=options.verify_timeout_seconds,
                                  date_slack=options.date_slack, rules=options.retry,
                                  clock=clock)
        self._wakeup = ChangeWakeup(db[SYSTEM_POSTS], self.wake,
                                    poll_seconds=options.poll_fallback_seconds,
                                    retry_seconds=options.stream_retry_seconds,
                                    pipeline=WAKE_PIPELINE)
        self._wake = asyncio.Event()
        self._runs: dict[BsonId, asyncio.Task[None]] = {}
        self._busy_until: dict[BsonId, datetime] = {}
        self._to_verify: set[BsonId] = set()
        self._next_sweep: datetime | None = None
        self._stopping = False
        self._main: asyncio.Task[None] | None = None

    @property
    def watching(self) -> bool:
        """Whether the change stream is open (else it polls)."""
        return self._wakeup.watching

    def wake(self) -> None:
        """Run a scheduling cycle now."""
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        if self._main is None:
            self._main = asyncio.create_task(self.run(), name=f"post-tracker {self.instance_id}")
        return self._main

    async def stop(self) -> None:
        """Stop claiming, let the work in hand finish (bounded), return when stopped."""
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            await self._main

    async def run(self) -> None:
        watcher = asyncio.create_task(self._wakeup.run(), name="post-tracker wakeup")
        log.info("tracker_started", instance_id=self.instance_id,
                 interval_seconds=self.options.interval_seconds)
        try:
            while not self._stopping:
                self._wake.clear()
                started = time.perf_counter()
                try:
                    delay = await self._cycle()
                except Exception as exc:
                    log.error("tracker_cycle_failed", error=f"{type(exc).__name__}: {exc}")
                    delay = self.options.error_pause_seconds
                metrics.CYCLE_SECONDS.labels(phase="schedule").observe(
                    time.perf_counter() - started)
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            self._stopping = True
            await stop_following(watcher)
            await self._finish_runs()
            await self._announcer.drain(timeout=5.0)
            log.info("tracker_stopped", instance_id=self.instance_id)

    # --- scheduling -----------------------------------------------------------------------

    async def _cycle(self) -> float:
        """Start the runs due now; return how long to sleep."""
        now = self._clock()
        if self._next_sweep is None or now >= self._next_sweep:
            self._next_sweep = now + timedelta(seconds=self.options.interval_seconds)
            # Once per interval: the query reads every pending post's index entry.
            for unusable in await self._store.unusable_pending():
                await self._publisher.reject(unusable, unusable.reason)
            await self._plan_verification()
            await self._report_statuses()
        due = await self._store.due_projects(now)
        self._busy_until = {key: until for key, until in self._busy_until.items() if until > now}
        due_now = set(due)
        # Looks at walls are quick; they go first so a backlog does not starve them.
        for project_id in dict.fromkeys([*sorted(self._to_verify, key=_order), *due]):
            if len(self._runs) >= self.options.max_parallel_projects:
                break
            if project_id not in self._runs and project_id not in self._busy_until:
                self._start_run(project_id, due=project_id in due_now)
        return await self._sleep_seconds(now)

    async def _plan_verification(self) -> None:
        publishing = set(await self._store.projects_publishing())
        recent = await self._leases.verified_within(
            publishing, self.options.interval_seconds * _RECENT_SHARE)
        self._to_verify = (self._to_verify & publishing) | (publishing - recent)

    async def _report_statuses(self) -> None:
        """The posts per status, for the alerts on ``error`` and ``possible_error`` posts."""
        for status, posts in count_by_status(await self._store.status_groups()).items():
            metrics.SYSTEM_POSTS.labels(status=status).set(posts)

    async def _sleep_seconds(self, now: datetime) -> float:
        assert self._next_sweep is not None
        moments = [self._next_sweep, *self._busy_until.values()]
        if (next_due := await self._store.next_due_after(now)) is not None:
            moments.append(next_due)
        seconds = min((moment - now).total_seconds() for moment in moments)
        return max(0.0, min(seconds, self.options.interval_seconds)) + _PAST_DUE

    def _start_run(self, project_id: BsonId, *, due: bool) -> None:
        task = asyncio.create_task(self._run_project(project_id, due=due),
                                   name=f"post-tracker project {id_label(project_id)}")
        self._runs[project_id] = task
        task.add_done_callback(partial(self._run_done, project_id))

    def _run_done(self, project_id: BsonId, task: asyncio.Task[None]) -> None:
        self._runs.pop(project_id, None)
        self._wake.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            # e.g. MongoDB unreachable: leave the project alone for a moment.
            pause = timedelta(seconds=self.options.error_pause_seconds)
            self._busy_until[project_id] = self._clock() + pause
            log.error("project_run_failed", project_id=id_label(project_id),
                      error=f"{type(exc).__name__}: {exc}")

    async def _finish_runs(self) -> None:
        runs = list(self._runs.values())
        if not runs:
            return
        _, pending = await asyncio.wait(runs, timeout=self.options.stop_grace_seconds)
        await cancel_and_wait(*pending)
        if pending:
            log.warning("project_runs_cancelled", runs=len(pending))

    # --- one project ----------------------------------------------------------------------

    async def _run_project(self, project_id: BsonId, *, due: bool) -> None:
        with structlog.contextvars.bound_contextvars(project_id=id_label(project_id),
                                                     tracker=self.instance_id):
            lease = await self._leases.acquire(project_id)
            if lease is None:
                recheck = timedelta(seconds=self.options.busy_recheck_seconds)
                self._busy_until[project_id] = self._clock() + recheck
                log.debug("project_leased_elsewhere")
                return
            lost = asyncio.Event()
            heartbeat = asyncio.create_task(self._keep_lease(lease, lost))
            try:
                await self._work(project_id, lease, lost, due=due)
            finally:
                await cancel_and_wait(heartbeat)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._leases.release(lease))

    async def _work(self, project_id: BsonId, lease: Lease, lost: asyncio.Event, *,
                    due: bool) -> None:
        project = await self._store.project(project_id)
        sent_since_look = 0
        last_look = time.monotonic()
        first = True
        while not self._stopping and not lost.is_set():
            step = await self._publisher.publish_next(project_id, project)
            if step is PublishStep.IDLE:
                if first and due:
                    # Scheduled as due, yet nothing to take (taken or changed meanwhile):
                    # not again at once, whatever made the schedule see it.
                    recheck = timedelta(seconds=self.options.busy_recheck_seconds)
                    self._busy_until[project_id] = self._clock() + recheck
                break
            first = False
            if step is PublishStep.SENT:
                sent_since_look += 1
            if self._stopping or lost.is_set():
                break
            if sent_since_look and (
                    sent_since_look >= self.options.verify_every_sent
                    or time.monotonic() - last_look >= self.options.interval_seconds):
                await self._look(project_id, project, lease)
                sent_since_look, last_look = 0, time.monotonic()
        if not self._stopping and not lost.is_set():
            await self._look(project_id, project, lease)
            self._to_verify.discard(project_id)

    async def _look(self, project_id: BsonId, project: ProjectRead, lease: Lease) -> None:
        report = await self._verifier.verify(project_id, project)
        if report.checked and report.wall_read:
            await self._leases.mark_verified(lease)
        if isinstance(project, Project):
            for post in report.to_resend:
                if self._stopping:
                    break
                await self._publisher.resend(post, project)

    async def _keep_lease(self, lease: Lease, lost: asyncio.Event) -> None:
        await self._leases.heartbeat(lease)
        log.warning("project_lease_lost")
        lost.set()
