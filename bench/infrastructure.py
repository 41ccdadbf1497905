"""What every benchmark of a run shares: its size, mongod and RabbitMQ.

* :class:`BenchSize`: the full run or the CI smoke (``--quick``).
* :class:`Infra`: its own ``mongod`` (``tools.mongod``, a throw-away data dir), the
  machine's RabbitMQ (``scripts/ensure-rabbitmq.sh`` if it is not up) or a
  :class:`PrivateRabbit` node, a run id and the log folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import ROOT, descendants, find_pids
from bench.report import RESULTS_DIR, log, quiet_library_logs
from tools.mongod import free_port, mongo_url, start_mongod, stop_mongod
from tools.processes import ChildProcess

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@dataclass(frozen=True)
class BenchSize:
    """How big each benchmark is: the full run (≤ ~10 min) or the CI smoke (< 1 min)."""

    quick: bool

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
        return True
    return False


async def wait_for_broker(timeout: float = 90.0, port: int = 5672) -> None:
    """RabbitMQ is shared with other users of the machine: wait while it is (re)starting."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
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
        self.process: ChildProcess | None = None
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
        self.process = ChildProcess("rabbitmq-server", [str(RABBITMQ_SERVER)], env=env,
                                    cwd=self.dir, log_path=self.dir / "server.log")
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if not self.process.alive or time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ did not start; see {self.dir}/log")
            await asyncio.sleep(0.25)
        await check_broker(self.url)

    @property
    def pid(self) -> int | None:
        """The node's Erlang VM (a descendant of the start script)."""
        if self.process is None:
            return None
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":
                    return pid
        return self.process.pid

    async def stop(self) -> None:
        if self.process is not None and not self.process.alive:
            log(f"the private RabbitMQ node had exited ({self.process.returncode}); "
                f"its logs stay in {self.dir}")
            return
        if self.process is not None:
            await self.process.stop(30)
        shutil.rmtree(self.dir, ignore_errors=True)


class Infra:
    """What every benchmark of one run shares: mongod, RabbitMQ, the run id and log folder."""

    def __init__(self, mode: BenchSize, private_broker: bool = False) -> None:
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
        if not port_open(5672):
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
            if self._rabbit.process is not None and self._rabbit.process.alive:
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


