"""A local RabbitMQ cluster of three nodes from Debian's ``rabbitmq-server``, for tests.

Each node has its own name (``<prefix>-<n>@localhost``), AMQP and distribution ports,
data and log directories, and no plugins (so no management or Prometheus listener
competes for a port); all share one Erlang cookie in the cluster's own ``HOME``. The
nodes are joined with ``rabbitmqctl join_cluster``, and every ``rabbitmqctl`` call names
its node (``-n``): the machine's own broker (``rabbit@<host>`` on 5672) is never touched.
Quorum queues declared once all three run get a member on each node.

Nodes are stopped and killed by the PIDs this module started (the script's, and the
Erlang VM's from the pid file the node writes).

Usage: ``python -m tools.rabbit_cluster DIR`` runs one in the foreground (Ctrl-C stops it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tools.mongod import free_port

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
# Not /usr/sbin/rabbitmqctl: that wrapper switches to the rabbitmq user and its cookie.
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class ClusterError(RuntimeError):
    """A node did not start, join or answer in time."""


@dataclass
class RabbitNode:
    name: str  # Erlang node name, e.g. "planner-1a2b-0@localhost"
    port: int  # AMQP
    dist_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    os_pid: int | None = None  # the Erlang VM, from its pid file

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RabbitCluster:
    directory: Path
    size: int = 3
    prefix: str = field(default_factory=lambda: f"planner-{uuid.uuid4().hex[:6]}")
    nodes: list[RabbitNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = self.directory / "home"
        if not self.nodes:
            self.nodes = [RabbitNode(f"{self.prefix}-{index}@localhost", free_port(),
                                     free_port(), self.directory / f"node-{index}")
                          for index in range(self.size)]

    @property
    def url(self) -> str:
        """AMQP_URL listing every node (shared/broker.py connects to whichever answers)."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"amqp://guest:guest@{hosts}/"

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Start every node, join them into one cluster; returns when all run in it."""
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
        try:
            for node in self.nodes:
                self._spawn(node)
            for node in self.nodes:
                self.await_startup(node, timeout)
            # Each rabbitmqctl call starts an Erlang VM (seconds on a busy machine): the
            # joining nodes go in parallel.
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(self._join, self.nodes[1:]))
            self.wait_running(len(self.nodes), timeout)
        except BaseException:
            self.stop()
            raise

    def _join(self, node: RabbitNode) -> None:
        self.ctl(node, "stop_app")
        self.ctl(node, "join_cluster", self.nodes[0].name)
        self.ctl(node, "start_app")

    def _spawn(self, node: RabbitNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        (node.directory / "enabled_plugins").write_text("[].\n")
        (node.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{node.port}\n")
        env = {**os.environ, **self._env(), "RABBITMQ_NODENAME": node.name,
               "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(node.port),
               "RABBITMQ_DIST_PORT": str(node.dist_port),
               "RABBITMQ_MNESIA_BASE": str(node.directory / "mnesia"),
               "RABBITMQ_LOG_BASE": str(node.directory / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.directory / "enabled_plugins"),
               "RABBITMQ_CONFIG_FILE": str(node.directory / "rabbitmq.conf"),
               "RABBITMQ_PID_FILE": str(node.directory / "beam.pid")}
        (node.directory / "beam.pid").unlink(missing_ok=True)
        with (node.directory / "server.log").open("ab") as out:
            node.process = subprocess.Popen([str(RABBITMQ_SERVER)], cwd=node.directory, env=env,
                                            stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        node.os_pid = None

    def await_startup(self, node: RabbitNode, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if node.process is None or node.process.poll() is not None:
                raise ClusterError(f"{node.name} exited; see {node.directory}/log")
            try:
                self.ctl(node, "await_startup", "--timeout", "5")
                node.os_pid = int((node.directory / "beam.pid").read_text().strip())
                return
            except ClusterError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def wait_running(self, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` nodes run in the cluster, as a live node sees it."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.running_nodes()
            if len(running) >= count:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"only {running} running after {timeout}s")
            time.sleep(0.5)

    def running_nodes(self) -> list[str]:
        for node in self.nodes:
            if not node.running:
                continue
            try:
                status = json.loads(self.ctl(node, "cluster_status", "--formatter", "json"))
            except (ClusterError, ValueError):
                continue
            return sorted(status.get("running_nodes", []))
        return []

    def kill(self, node: RabbitNode) -> None:
        """SIGKILL the node's Erlang VM and its start script (by the PIDs we know)."""
        if node.os_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.os_pid, signal.SIGKILL)
        if node.process is not None:
            node.process.kill()
            node.process.wait()
        node.os_pid = None

    def restart(self, node: RabbitNode, timeout: float = 120.0) -> None:
        """Start a stopped or killed node again on its own data: it rejoins the cluster."""
        self._spawn(node)
        self.await_startup(node, timeout)

    def stop(self) -> None:
        """Stop every node we started: SIGTERM, then SIGKILL if it lingers."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            node.process.terminate()
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill(node)
            if node.os_pid is not None:  # the VM outlived its script
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.os_pid, signal.SIGKILL)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- looking at it --------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        # The cluster's own cookie (HOME), for the nodes and for rabbitmqctl.
        return {"HOME": str(self.home)}

    def ctl(self, node: RabbitNode, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n <node> …``; its output, or ClusterError."""
        try:
            done = subprocess.run([RABBITMQCTL, "-q", "-n", node.name, *args],
                                  env={**os.environ, **self._env()}, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"rabbitmqctl -n {node.name} {' '.join(args)}: timed out") from exc
        if done.returncode != 0:
            raise ClusterError(f"rabbitmqctl -n {node.name} {' '.join(args)}: "
                               f"{done.stderr.decode().strip() or done.stdout.decode().strip()}")
        return done.stdout.decode()

    def live_node(self) -> RabbitNode:
        for node in self.nodes:
            if node.running:
                return node
        raise ClusterError("no node is running")

    def queue_members(self, queue: str) -> tuple[str, list[str]]:
        """A quorum queue's leader and members (Erlang node names)."""
        listing = json.loads(self.ctl(self.live_node(), "list_queues", "name", "leader",
                                      "members", "--formatter", "json"))
        for row in listing:
            if row["name"] == queue:
                return str(row["leader"]), [str(member) for member in row["members"]]
        raise ClusterError(f"no queue {queue}")

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)


def main() -> None:
    cluster = RabbitCluster(Path(sys.argv[1]))
    cluster.start()
    print(f"RabbitMQ cluster ready at {cluster.url}", flush=True)
    try:
        while all(node.running for node in cluster.nodes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
