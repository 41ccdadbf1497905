"""The benchmarks' shared harness: real local services as separate processes, and statistics.

* :class:`Infra` (one per run): its own ``mongod`` (``tools.mongod``, a throw-away data
  dir), the machine's RabbitMQ (``scripts/ensure-rabbitmq.sh`` if it is not up), a run
  id, and the log folder.
* :class:`Stack` (one per benchmark): its own ``MONGO_DB`` and ``AMQP_PREFIX``, the VK
  sandbox and the services as subprocesses (``python -m services.<name>``), each started
  and stopped by PID and waited for through its ``/readyz``. On close the broker
  topology and the database are deleted.
* :class:`Proc`: CPU time and RSS of a process from ``/proc``; :class:`CpuWatch` for a
  window of several processes.
* Statistics (:func:`percentile`, :class:`Figure`, :class:`BenchResult`) and the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import aiohttp
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import PROJECTS, Document, connect, ensure_indexes
from shared.settings import Settings
from shared.topology import Topology, delete_topology
from tools.mongod import free_port, mongo_url, start_mongod, stop_mongod
from tools.vk_sandbox.control import SandboxControl

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
PYTHON = sys.executable
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Settings of the services that the benchmarks set themselves; anything else of the
# caller's environment that would change a service's behaviour is dropped.
SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)


def quiet_library_logs() -> None:
    """The bench process's own use of shared/ (VK client, broker) logs warnings only, to stderr."""
    import logging

    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- modes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """How big each benchmark is: the full run (≤ ~10 min) or the CI smoke (< 1 min)."""

    quick: bool

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


# --- processes --------------------------------------------------------------------------


class Proc:
    """A child process we started (its own session), with its output in a log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def logged(self, event: str, field: str) -> list[float]:
        """Numeric ``field`` of the process's JSON log lines whose ``event`` is ``event``."""
        values: list[float] = []
        with contextlib.suppress(OSError), self.log_path.open(errors="replace") as lines:
            for line in lines:
                if f'"{event}"' not in line:
                    continue
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == event and isinstance(record.get(field), int | float):
                        values.append(float(record[field]))
        return values

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM by PID, then SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.pid}) did not stop in {timeout:g}s; killing it")
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait)


def spawn(name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:
        popen = subprocess.Popen(list(args), cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(name, popen, log_path)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(statm[1]) * PAGE_SIZE


def find_pids(command_name: str) -> list[int]:
    """PIDs whose ``comm`` is ``command_name`` (read-only look at /proc)."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == command_name:
                    pids.append(int(entry.name))
    return pids


def descendants(root: int) -> list[int]:
    """PIDs below ``root`` in the process tree (read-only look at /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2:].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(value) for value in first[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


class CpuWatch:
    """CPU used by named processes (and the whole machine) over a window, in % of one core.

    ``others`` is what the rest of the machine used meanwhile (other users' work on a
    shared machine): the whole machine's busy time less the watched processes and this
    benchmark process itself.
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = {"bench": os.getpid(), **{name: pid for name, pid in pids.items() if pid}}
        self._start: dict[str, float] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._t0 = 0.0

    def __enter__(self) -> CpuWatch:
        self._start = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._machine = machine_busy_seconds()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        elapsed = max(1e-6, time.monotonic() - self._t0)
        self.percent = {name: round(100 * (cpu_seconds(pid) - self._start[name]) / elapsed, 1)
                        for name, pid in self._pids.items()}
        busy, total = machine_busy_seconds()
        self.machine_percent = round(
            100 * (busy - self._machine[0]) / max(1e-6, total - self._machine[1]), 1)
        cores = os.cpu_count() or 1
        self.percent["others"] = round(max(
            0.0, self.machine_percent * cores - sum(self.percent.values())), 1)

    percent: dict[str, float]
    machine_percent: float

    def attribute(self, name: str, percent: float) -> None:
        """Name a share of ``others`` (a process measured by other means, e.g. wrk)."""
        self.percent[name] = percent
        self.percent["others"] = round(max(0.0, self.percent["others"] - percent), 1)

    def report(self) -> dict[str, Any]:
        return {"percent_of_one_core": self.percent,
                "machine_busy_percent_all_cores": self.machine_percent}


class NoiseWatch:
    """How busy the machine was during a benchmark, and how much of that was not us.

    "Us" is this process and everything it started (the services, mongod, a private
    RabbitMQ node, the load generators), counted whether they are still running or were
    reaped meanwhile. The machine's shared RabbitMQ counts as "others" (other users'
    tests use it too).
    """

    def __init__(self) -> None:
        self._start = (0.0, 0.0, 0.0, 0.0)

    @staticmethod
    def _ours() -> float:
        times = os.times()
        live = sum(cpu_seconds(pid) for pid in descendants(os.getpid()))
        return times.user + times.system + times.children_user + times.children_system + live

    def __enter__(self) -> NoiseWatch:
        busy, total = machine_busy_seconds()
        self._start = (busy, total, self._ours(), time.monotonic())
        return self

    def __exit__(self, *_: object) -> None:
        busy, total = machine_busy_seconds()
        busy0, total0, ours0, started = self._start
        cores = os.cpu_count() or 1
        elapsed = max(1e-6, time.monotonic() - started)
        machine = 100 * (busy - busy0) / max(1e-6, total - total0)
        ours = 100 * (self._ours() - ours0) / elapsed / cores
        self.report = {"machine_busy_percent": round(machine, 1),
                       "ours_percent": round(min(machine, ours), 1),
                       "others_percent": round(max(0.0, machine - ours), 1)}

    report: dict[str, float]


async def wait_http_ok(url: str, procs: Iterable[Proc] = (), timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    watched = list(procs)
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for proc in watched:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n"
                                       f"{proc.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout:g}s")


async def wait_until(predicate: Any, timeout: float, interval: float = 0.1,
                     what: str = "condition", required: bool = True) -> float:
    """Await ``predicate()`` (an async callable returning bool) until true; the time it took.

    Past ``timeout``: TimeoutError, or (``required=False``) just return.
    """
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            if required:
                raise TimeoutError(f"{what} not reached within {timeout:g}s")
            return time.monotonic() - started
        await asyncio.sleep(interval)


def raise_open_files_limit(wanted: int = 65536) -> int:
    """Raise this process's (and so its children's) open-files limit; the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):  # raising the hard limit needs root
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


# --- infrastructure ---------------------------------------------------------------------


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
        return True
    return False


async def wait_for_broker(timeout: float = 90.0, port: int = 5672) -> None:
    """RabbitMQ is shared with other users of the machine: wait while it is (re)starting."""
    deadline = time.monotonic() + timeout
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"RabbitMQ does not answer on 127.0.0.1:{port}")
        await asyncio.sleep(0.5)


async def check_broker(url: str = AMQP_URL, timeout: float = 5.0) -> None:
    """Fail fast, with a clear reason, when the broker accepts TCP but not AMQP."""
    import aio_pika

    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), timeout)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        raise RuntimeError(f"RabbitMQ at {url} does not complete an AMQP handshake "
                           f"within {timeout:g}s ({type(exc).__name__})") from exc
    await connection.close()


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


class PrivateRabbit:
    """A RabbitMQ node of the benchmark's own: own name, ports and data dir, no plugins.

    Used with ``--private-broker`` (or when the machine's broker does not answer): other
    users of a shared machine may stop and start the shared broker in their tests.
    ``plugins`` and ``config`` (rabbitmq.conf lines) are for tests that need a plugin
    (tests/observability: rabbitmq_prometheus).
    """

    def __init__(self, plugins: Sequence[str] = (), config: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="planner-bench-rabbit-"))
        self.popen: subprocess.Popen[bytes] | None = None
        self.plugins = tuple(plugins)
        self.config = tuple(config)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    async def start(self, timeout: float = 60.0) -> None:
        (self.dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        (self.dir / "rabbitmq.conf").write_text("".join(f"{line}\n" for line in self.config))
        env = {**os.environ, "HOME": str(self.dir),
               "RABBITMQ_NODENAME": f"bench{uuid.uuid4().hex[:8]}@localhost",
               "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
               "RABBITMQ_DIST_PORT": str(free_port()),
               "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
               "RABBITMQ_LOG_BASE": str(self.dir / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
               "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf")}
        log(f"starting a private RabbitMQ node on 127.0.0.1:{self.port}")
        self.popen = await asyncio.to_thread(self._spawn, env)
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ did not start; see {self.dir}/log")
            await asyncio.sleep(0.25)
        await check_broker(self.url)

    def _spawn(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.dir / "server.log").open("wb") as out:
            return subprocess.Popen([str(RABBITMQ_SERVER)], cwd=self.dir, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int | None:
        """The node's Erlang VM (a descendant of the start script)."""
        if self.popen is None:
            return None
        for pid in descendants(self.popen.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":
                    return pid
        return self.popen.pid

    async def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            log(f"the private RabbitMQ node had exited ({self.popen.returncode}); "
                f"its logs stay in {self.dir}")
            return
        if self.popen is not None:
            self.popen.terminate()
            try:
                await asyncio.to_thread(self.popen.wait, 30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                await asyncio.to_thread(self.popen.wait)
        shutil.rmtree(self.dir, ignore_errors=True)


class Infra:
    """What every benchmark of one run shares: mongod, RabbitMQ, the run id and log folder."""

    def __init__(self, mode: Mode, private_broker: bool = False) -> None:
        self.mode = mode
        self.private_broker = private_broker
        self.broker = "shared"
        self._rabbit: PrivateRabbit | None = None
        self.run_id = uuid.uuid4().hex[:8]
        self.log_dir = RESULTS_DIR / "logs" / self.run_id
        self.mongo_url = ""
        self.amqp_url = AMQP_URL
        self._mongod: subprocess.Popen[bytes] | None = None
        self._data_dir: Path | None = None

    async def start(self) -> None:
        quiet_library_logs()
        if self.private_broker:
            await self._start_private("asked for (--private-broker)")
        else:
            await self._use_shared_broker()
        self._data_dir = Path(tempfile.mkdtemp(prefix="planner-bench-mongo-"))
        port = free_port()
        log(f"starting mongod on 127.0.0.1:{port} (data in {self._data_dir})")
        self._mongod = await asyncio.to_thread(start_mongod, self._data_dir, port)
        self.mongo_url = mongo_url(port)

    async def _use_shared_broker(self) -> None:
        if not _port_open(5672):
            if find_pids("beam.smp"):
                log("RabbitMQ runs but does not answer (restarting?): waiting for it")
                with contextlib.suppress(TimeoutError):
                    await wait_for_broker(60)
            else:
                log("RabbitMQ is not up: scripts/ensure-rabbitmq.sh")
                await asyncio.to_thread(
                    subprocess.run, [str(ROOT / "scripts" / "ensure-rabbitmq.sh")], check=True)
        try:
            await check_broker()
        except RuntimeError as exc:
            if not await asyncio.to_thread(RABBITMQ_SERVER.exists):
                raise
            await self._start_private(f"the shared one is unusable: {exc}")

    async def _start_private(self, why: str) -> None:
        self._rabbit = PrivateRabbit()
        await self._rabbit.start()
        self.amqp_url = self._rabbit.url
        self.broker = f"private node on 127.0.0.1:{self._rabbit.port} ({why})"

    async def recover_broker(self) -> None:
        """Before a retry: a private node that died is replaced; the shared one is waited for."""
        if self._rabbit is not None:
            if self._rabbit.popen is not None and self._rabbit.popen.poll() is None:
                return
            await self._rabbit.stop()
            await self._start_private("the previous private node died")
            return
        with contextlib.suppress(TimeoutError):
            await wait_for_broker(90)

    @property
    def amqp_port(self) -> int:
        return self._rabbit.port if self._rabbit is not None else 5672

    @property
    def mongod_pid(self) -> int:
        assert self._mongod is not None
        return self._mongod.pid

    def rabbit_pid(self) -> int | None:
        if self._rabbit is not None:
            return self._rabbit.pid
        pids = find_pids("beam.smp")
        return pids[0] if pids else None

    async def stop(self) -> None:
        if self._rabbit is not None:
            await self._rabbit.stop()
        if self._mongod is not None:
            await asyncio.to_thread(stop_mongod, self._mongod)
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)


ServiceName = Literal["callback_gateway", "refresher", "post_tracker", "update_notifier"]


class Stack:
    """One benchmark's database, broker prefix, VK sandbox and service processes."""

    def __init__(self, infra: Infra, name: str) -> None:
        self.infra = infra
        self.name = name
        self.db_name = f"bench_{infra.run_id}_{name}"
        self.prefix = f"bench-{infra.run_id}-{name}"
        self.log_dir = infra.log_dir / name
        self.procs: list[Proc] = []
        self.sandbox_url: str | None = None
        self._client: AsyncMongoClient[Document] | None = None
        self._sessions: list[SandboxControl] = []

    # --- settings and environment -------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"mongo_url": self.infra.mongo_url, "mongo_db": self.db_name,
                                  "amqp_url": self.infra.amqp_url, "amqp_prefix": self.prefix}
        if self.sandbox_url is not None:
            values["vk_api_url"] = f"{self.sandbox_url}/method"
        values.update(overrides)
        return Settings.model_validate(values)

    def env(self, **variables: str) -> dict[str, str]:
        base = {key: value for key, value in os.environ.items()
                if key.upper() not in SETTINGS_VARIABLES}
        base.update({
            "MONGO_URL": self.infra.mongo_url, "MONGO_DB": self.db_name,
            "AMQP_URL": self.infra.amqp_url, "AMQP_PREFIX": self.prefix,
            "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            "GATEWAY_HOST": "127.0.0.1", "NOTIFIER_HOST": "127.0.0.1", "HEALTH_HOST": "127.0.0.1",
        })
        if self.sandbox_url is not None:
            base["VK_API_URL"] = f"{self.sandbox_url}/method"
        base.update(variables)
        return base

    @property
    def db(self) -> AsyncDatabase[Document]:
        if self._client is None:
            self._client = connect(self.settings(), "bench")
        return self._client[self.db_name]

    async def prepare_db(self) -> AsyncDatabase[Document]:
        await ensure_indexes(self.db, 24 * 3600)
        return self.db

    # --- processes ----------------------------------------------------------------------

    async def start_sandbox(self, retry_scale: float = 0.01) -> SandboxControl:
        port = free_port()
        proc = spawn(f"vk_sandbox-{port}",
                     [PYTHON, "-m", "tools.vk_sandbox", "--host", "127.0.0.1", "--port", str(port),
                      "--retry-scale", str(retry_scale), "--log-level", "WARNING"],
                     self.env(), self.log_dir)
        self.procs.append(proc)
        self.sandbox_url = f"http://127.0.0.1:{port}"
        await wait_http_ok(f"{self.sandbox_url}/_sandbox/health", [proc])
        control = SandboxControl(self.sandbox_url)
        self._sessions.append(control)
        self.sandbox_proc = proc
        return control

    sandbox_proc: Proc

    async def start_service(self, service: ServiceName, *, label: str | None = None,
                            launcher: Sequence[str] = (), wait: bool = True,
                            **variables: str) -> ServiceProc:
        """Start ``python -m services.<service>`` (through ``launcher`` if given)."""
        await wait_for_broker(port=self.infra.amqp_port)
        port = free_port()
        env = self.env(**variables)
        if service == "callback_gateway":
            env["GATEWAY_PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/readyz"
        elif service == "update_notifier":
            env["NOTIFIER_PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/readyz"
        else:
            env["HEALTH_PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/readyz"
        module = f"services.{service}"
        args = [PYTHON, "-m", *launcher, module] if launcher else [PYTHON, "-m", module]
        name = label or service
        proc = ServiceProc(spawn(f"{name}-{port}", args, env, self.log_dir), port, ready)
        self.procs.append(proc)
        if wait:
            await wait_http_ok(ready, [proc])
        return proc

    async def start_bare_app(self, *args: str, label: str = "bare_app") -> ServiceProc:
        """:mod:`bench.bare_app` (``args``: e.g. ``--publish-to`` for the naive baseline)."""
        port = free_port()
        proc = ServiceProc(spawn(f"{label}-{port}", [PYTHON, "-m", "bench.bare_app", "--port",
                                                     str(port), *args], self.env(), self.log_dir),
                           port, f"http://127.0.0.1:{port}/readyz")
        self.procs.append(proc)
        await wait_http_ok(proc.ready_url, [proc])
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n"
                                   f"{proc.tail(5)}")

    async def stop_proc(self, proc: Proc) -> None:
        await proc.stop()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    # --- data ---------------------------------------------------------------------------

    async def add_projects(self, sandbox: SandboxControl | None, count: int, *,
                           secret: bool = True, wall_posts: int = 0) -> list[BenchProject]:
        """``count`` communities (each with its own admin and token) and their projects.

        With ``wall_posts``, each wall gets that many published posts first.
        """
        limit = asyncio.Semaphore(20)

        async def one(index: int) -> BenchProject:
            async with limit:
                if sandbox is not None:
                    community = await sandbox.create_community(name=f"bench {index}")
                    admin = await sandbox.create_user(admin_of=[community.group_id])
                    group_id, token = community.group_id, admin.token
                    for post in range(wall_posts):
                        await sandbox.create_post(group_id, f"older post {post}")
                else:
                    group_id, token = 1000 + index, f"token-{index}"
                return BenchProject(f"bench-{index}", group_id, token,
                                    uuid.uuid4().hex if secret else None)

        projects = list(await asyncio.gather(*(one(index) for index in range(count))))
        await self.db[PROJECTS].insert_many([{
            "_id": project.id, "name": f"Bench project {project.id}",
            "vk_group_id": project.group_id, "vk_confirmation_code": "c0nf1rm",
            "vk_callback_secret": project.secret, "vk_user_token": project.token,
        } for project in projects])
        return projects

    async def close(self) -> None:
        await asyncio.gather(*(proc.stop() for proc in self.procs))
        self.procs.clear()
        for control in self._sessions:
            await control.close()
        with contextlib.suppress(Exception):
            await delete_topology(self.infra.amqp_url, Topology(self.prefix))
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.drop_database(self.db_name)
            await self._client.close()
            self._client = None


class ServiceProc(Proc):
    def __init__(self, proc: Proc, port: int, ready_url: str) -> None:
        super().__init__(proc.name, proc.popen, proc.log_path)
        self.port = port
        self.ready_url = ready_url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class BenchProject:
    id: str
    group_id: int
    token: str
    secret: str | None


async def connect_callbacks(stack: Stack, projects: Sequence[BenchProject], gateway_url: str,
                            timeout: float = 30.0) -> None:
    """Register the gateway as each community's callback server, with the project's secret.

    The same VK calls as ``tools/callback_setup.py`` (confirmation code stored on the
    project first, the real confirmation handshake, the refresher's events enabled), but
    keeping the secret the project already has: the product's set-up rotates it after the
    handshake, and the gateway's project cache would then refuse the new one for up to
    GATEWAY_PROJECT_CACHE_SECONDS.
    """
    from shared.vk import VkClient
    from tools.callback_setup import REFRESH_EVENTS, SERVER_TITLE

    settings = stack.settings()
    async with VkClient.from_settings(settings) as vk:
        async def one(project: BenchProject) -> None:
            assert project.secret is not None
            code = await vk.groups_get_callback_confirmation_code(project.token, project.group_id)
            await stack.db[PROJECTS].update_one({"_id": project.id},
                                                {"$set": {"vk_confirmation_code": code}})
            server_id = await vk.groups_add_callback_server(
                project.token, project.group_id, gateway_url, SERVER_TITLE, project.secret)
            await vk.groups_set_callback_settings(project.token, project.group_id, server_id,
                                                  settings.vk_api_version,
                                                  dict.fromkeys(REFRESH_EVENTS, True))
            deadline = time.monotonic() + timeout
            while True:
                servers = await vk.groups_get_callback_servers(project.token, project.group_id)
                status = next(item.status for item in servers if item.id == server_id)
                if status == "ok":
                    return
                if status == "failed" or time.monotonic() > deadline:
                    raise RuntimeError(f"callback server of {project.id}: {status}")
                await asyncio.sleep(0.1)

        await asyncio.gather(*(one(project) for project in projects))
    # Let VK's 1-s rate window of these set-up calls pass: the services' own limiters
    # never saw them.
    await asyncio.sleep(1.1)


async def purge_queues(url: str, topology: Topology) -> None:
    """Drop messages left in the consuming queues (benchmarks without a consumer)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for spec in topology.consuming_queues:
            with contextlib.suppress(Exception):
                queue = await channel.get_queue(spec.name, ensure=False)
                await queue.purge()


def callback_body(project: BenchProject, index: int, event_type: str = "wall_post_new",
                  post: dict[str, Any] | None = None) -> dict[str, Any]:
    """A VK callback as VK posts it, for ``project``."""
    body: dict[str, Any] = {
        "type": event_type, "group_id": project.group_id,
        "event_id": uuid.uuid4().hex + f"{index:08x}", "v": "5.199",
        "object": post or {"id": index + 1, "owner_id": -project.group_id,
                           "from_id": -project.group_id, "date": int(time.time()),
                           "text": f"post {index}", "post_type": "post"},
    }
    if project.secret is not None:
        body["secret"] = project.secret
    return body


class FixedSpacing(TypedDict):
    REFRESHER_ROUND_SPACING_SECONDS: str
    REFRESHER_ROUND_SPACING_PER_EVENT_SECONDS: str
    REFRESHER_ROUND_SPACING_MAX_SECONDS: str


def fixed_spacing(seconds: float) -> FixedSpacing:
    """The refresher's environment for rounds a fixed ``seconds`` apart, however busy a key."""
    return FixedSpacing(REFRESHER_ROUND_SPACING_SECONDS=str(seconds),
                        REFRESHER_ROUND_SPACING_PER_EVENT_SECONDS="0",
                        REFRESHER_ROUND_SPACING_MAX_SECONDS=str(seconds))


def round_spacing(settings: Settings) -> dict[str, float]:
    """The refresher's round spacing settings, for a result's details."""
    return {"base_seconds": settings.refresher_round_spacing_seconds,
            "per_event_seconds": settings.refresher_round_spacing_per_event_seconds,
            "max_seconds": settings.refresher_round_spacing_max_seconds}


# --- statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def distribution(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    return {"count": len(values),
            "p50": round(percentile(values, 50) * scale, 3),
            "p90": round(percentile(values, 90) * scale, 3),
            "p99": round(percentile(values, 99) * scale, 3),
            "max": round(max(values) * scale, 3) if values else math.nan}


@dataclass(frozen=True)
class Target:
    """``value <op> bound``, on the figure itself or on its ratio to the baseline."""

    op: Literal["<=", ">="]
    bound: float
    on: Literal["value", "ratio"] = "value"

    def met(self, value: float, ratio: float | None) -> bool:
        subject = ratio if self.on == "ratio" else value
        if subject is None or math.isnan(subject):
            return False
        return subject <= self.bound if self.op == "<=" else subject >= self.bound

    def describe(self) -> str:
        symbol = "≤" if self.op == "<=" else "≥"
        return f"ratio {symbol} {self.bound:g}" if self.on == "ratio" else f"{symbol} {self.bound:g}"


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    samples: list[float]
    baseline_label: str | None = None
    baseline_samples: list[float] | None = None
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def baseline_median(self) -> float | None:
        return median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        if base is None or base == 0 or math.isnan(base):
            return None
        return self.median / base

    @property
    def status(self) -> str:
        if self.target is None:
            return "-"
        return "met" if self.target.met(self.median, self.ratio) else "NOT MET"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label, "unit": self.unit, "median": _num(self.median),
            "min": _num(min(self.samples)) if self.samples else None,
            "max": _num(max(self.samples)) if self.samples else None,
            "samples": [_num(value) for value in self.samples],
            "ratio": _num(self.ratio) if self.ratio is not None else None,
            "target": None if self.target is None else {
                "op": self.target.op, "bound": self.target.bound, "on": self.target.on},
            "status": self.status,
        }
        if self.baseline_samples is not None:
            data["baseline"] = {
                "label": self.baseline_label, "median": _num(median(self.baseline_samples)),
                "min": _num(min(self.baseline_samples)), "max": _num(max(self.baseline_samples)),
                "samples": [_num(value) for value in self.baseline_samples]}
        if self.note:
            data["note"] = self.note
        return data


def _num(value: float) -> float:
    return round(value, 4) if not math.isnan(value) else value


@dataclass
class BenchResult:
    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    noise: dict[str, float] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "seconds": round(self.seconds, 1), "error": self.error,
                "machine": self.noise,
                "figures": {figure.key: figure.to_json() for figure in self.figures},
                "details": self.details}


def results_from_json(payload: Mapping[str, Any]) -> list[BenchResult]:
    """The results of a saved run (``latest.json``), to print its table again."""
    results = []
    for name, data in payload["benchmarks"].items():
        result = BenchResult(name, data["title"], seconds=data["seconds"], error=data["error"],
                             noise=data.get("machine") or {})
        for key, figure in data["figures"].items():
            target = figure.get("target")
            baseline = figure.get("baseline")
            result.add(Figure(
                key, figure["label"], figure["unit"], list(figure["samples"]),
                baseline["label"] if baseline else None,
                list(baseline["samples"]) if baseline else None,
                Target(target["op"], target["bound"], target["on"]) if target else None))
        results.append(result)
    return results


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1 or value == 0:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip()


def table_rows(results: Sequence[BenchResult]) -> list[list[str]]:
    rows = [["benchmark", "figure", "measured: median [min–max]", "baseline (same run)", "ratio",
             "target", "status", "others' CPU"]]
    for result in results:
        noise = (f"{result.noise['others_percent']:.0f}% of machine"
                 if "others_percent" in result.noise else "")
        if result.error:
            rows.append([result.name, "ERROR", result.error[:60], "", "", "", "NOT MET", noise])
        for figure in result.figures:
            spread = (f" [{fmt(min(figure.samples))}–{fmt(max(figure.samples))}]"
                      if len(figure.samples) > 1 else "")
            baseline = (f"{figure.baseline_label}: {fmt(figure.baseline_median, figure.unit)}"
                        if figure.baseline_samples else "")
            ratio = f"{figure.ratio:.3g}" if figure.ratio is not None else ""
            target = figure.target.describe() if figure.target else ""
            rows.append([result.name, figure.label, fmt(figure.median, figure.unit) + spread,
                         baseline, ratio, target, figure.status, noise])
            noise = ""
    return rows


def render_table(results: Sequence[BenchResult], markdown: bool = False) -> str:
    rows = table_rows(results)
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    out = []
    for number, row in enumerate(rows):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    load = os.getloadavg()
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "ram_gib": round(memory_kb / 1024 / 1024, 1),
            "python": sys.version.split()[0], "loadavg_at_start": [round(v, 2) for v in load]}


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=True) + "\n")
