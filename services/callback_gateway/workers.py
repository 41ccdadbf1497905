"""``GATEWAY_WORKERS=N``: N gateway processes share one port (``SO_REUSEPORT``).

One gateway process is bound by one core (its event loop); N workers on one host
or pod use N cores, each with its own broker connection and group commit, and the
kernel spreads incoming connections over them. More replicas do the same across
hosts and are the first choice where the orchestrator can place them; workers are
for a big host or pod (fewer pods, one address, one set of MongoDB/RabbitMQ
connections per worker instead of per pod).

The parent only supervises: it starts the workers (fresh interpreters), forwards
SIGTERM/SIGINT to them, and if a worker dies on its own it stops the others and
exits 1, so the orchestrator restarts the whole set (a half-sized gateway would
look healthy). Metrics stay whole: the workers write them to a shared
``PROMETHEUS_MULTIPROC_DIR`` and whichever worker answers ``/metrics`` reports the
sum of all (:mod:`shared.health`). ``/healthz`` and ``/readyz`` are answered by
the worker that takes the request, about itself.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
from collections.abc import Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog

from shared.logging import configure_logging
from shared.service import Lifespan, run_service
from shared.settings import load_settings

log = structlog.get_logger(__name__)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
STOP_GRACE_SECONDS = 30


def run_workers(service: str, lifespan: Lifespan) -> None:
    """:func:`~shared.service.run_service` in ``GATEWAY_WORKERS`` processes (one: this one)."""
    settings = load_settings()
    if settings.gateway_workers == 1:
        run_service(service, lifespan)
        return
    configure_logging(settings, service)
    with tempfile.TemporaryDirectory(prefix="gateway-metrics-") as metrics_dir:
        # Read by prometheus_client when a worker imports it: set before they start.
        os.environ.setdefault(MULTIPROC_DIR_VARIABLE, metrics_dir)
        raise SystemExit(supervise(service, lifespan, settings.gateway_workers))


def supervise(service: str, lifespan: Lifespan, count: int) -> int:
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited loop
    # The target is pickled by reference: run_service and the lifespan are module-level.
    workers = [context.Process(target=run_service, args=(service, lifespan),
                               name=f"{service}-{index}") for index in range(count)]
    signalled = False

    def terminate() -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal signalled
        signalled = True
        terminate()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    for worker in workers:
        worker.start()
    log.info("workers_started", workers=len(workers), pids=[worker.pid for worker in workers])
    first = _wait_for_first_exit(workers)
    if not signalled:
        log.error("worker_exited", pid=first.pid, exit_code=first.exitcode)
        terminate()
    for worker in workers:
        worker.join(STOP_GRACE_SECONDS)
        if worker.is_alive():
            worker.kill()
            worker.join()
    log.info("stopped", service=service)
    return 0 if signalled else 1


def _wait_for_first_exit(workers: Sequence[BaseProcess]) -> BaseProcess:
    while True:
        wait([worker.sentinel for worker in workers])
        for worker in workers:
            if not worker.is_alive():
                return worker

