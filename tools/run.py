"""``make run``: the whole system on one machine, in the foreground.

Starts a local mongod (data in ``.mongo-data/``), the VK sandbox with one demo
community, seeds a demo project, starts the four services, and connects the
demo community's callbacks to the gateway. Every child's output is shown with
its name. Ctrl-C (or SIGTERM) stops everything it started, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.logging import configure_logging
from shared.settings import LogFormat, LogLevel, Settings
from tools.demo import seed_demo_project
from tools.mongod import mongo_url, start_mongod, stop_mongod
from tools.processes import ChildProcess, python_module, wait_until_healthy
from tools.vk_sandbox import DEMO_GROUP_ID

ROOT = Path(__file__).resolve().parents[1]
MONGO_PORT = int(os.environ.get("RUN_MONGO_PORT", "27017"))
SANDBOX_PORT = int(os.environ.get("RUN_SANDBOX_PORT", "8090"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))
NOTIFIER_PORT = int(os.environ.get("NOTIFIER_PORT", "8081"))
SERVICES = ("callback_gateway", "refresher", "post_tracker", "update_notifier")
COLOURS = {"vk_sandbox": 35, "callback_gateway": 36, "refresher": 33, "post_tracker": 32,
           "update_notifier": 34, "run": 37}


def say(name: str, line: str) -> None:
    prefix = f"{name:>16} | "
    if sys.stdout.isatty():
        prefix = f"\033[{COLOURS.get(name, 37)}m{prefix}\033[0m"
    sys.stdout.write(prefix + line.rstrip("\n") + "\n")
    sys.stdout.flush()


def child_environment() -> dict[str, str]:
    return {
        **os.environ,
        "MONGO_URL": os.environ.get("MONGO_URL", mongo_url(MONGO_PORT)),
        "VK_API_URL": os.environ.get("VK_API_URL", f"http://127.0.0.1:{SANDBOX_PORT}/method"),
        "GATEWAY_PORT": str(GATEWAY_PORT),
        "NOTIFIER_PORT": str(NOTIFIER_PORT),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
        # Every line of a callback's path, the gateway's ``callback_accepted`` included.
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "DEBUG"),
        "TRACKER_INTERVAL_SECONDS": os.environ.get("TRACKER_INTERVAL_SECONDS", "50"),
        "PYTHONUNBUFFERED": "1",
        # The dashboard (http://127.0.0.1:8081/) shows its sandbox buttons.
        "DASHBOARD_SANDBOX_URL": os.environ.get("DASHBOARD_SANDBOX_URL",
                                                f"http://127.0.0.1:{SANDBOX_PORT}"),
    }


class Supervisor:
    """The children of ``make run``, stopped in the reverse order of their start."""

    def __init__(self) -> None:
        self.children: list[ChildProcess] = []
        self.mongod: subprocess.Popen[bytes] | None = None

    def spawn(self, name: str, *args: str) -> ChildProcess:
        child = ChildProcess(name, python_module(*args), env=child_environment(),
                             echo=functools.partial(say, name))
        self.children.append(child)
        return child

    async def stop_all(self) -> None:
        running = [child for child in reversed(self.children) if child.alive]
        for child in running:
            say("run", f"stopping {child.name} (pid {child.pid})")
        await asyncio.gather(*(child.stop(15) for child in running))
        if self.mongod is not None:
            say("run", f"stopping mongod (pid {self.mongod.pid})")
            await asyncio.to_thread(stop_mongod, self.mongod)

    def dead_child(self) -> str | None:
        return next((f"{child.name} exited with {child.returncode}" for child in self.children
                     if not child.alive), None)


async def main() -> int:
    # Our own few log lines (VK calls while connecting the demo) only when they matter.
    configure_logging(Settings(log_format=LogFormat.CONSOLE, log_level=LogLevel.WARNING), "run")
    supervisor = Supervisor()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if "MONGO_URL" not in os.environ:
            say("run", f"starting mongod on 127.0.0.1:{MONGO_PORT} (data in .mongo-data/)")
            supervisor.mongod = await asyncio.to_thread(start_mongod, ROOT / ".mongo-data",
                                                        MONGO_PORT)
        supervisor.spawn("vk_sandbox", "tools.vk_sandbox", "--demo", "--host", "127.0.0.1",
                         "--port", str(SANDBOX_PORT), "--retry-scale", "0.1")
        await wait_until_healthy(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/health",
                                 supervisor.children, timeout=30)
        for service in SERVICES:
            supervisor.spawn(service, f"services.{service}")
        for port in (GATEWAY_PORT, NOTIFIER_PORT):
            await wait_until_healthy(f"http://127.0.0.1:{port}/readyz", supervisor.children,
                                     timeout=30)
        environment = child_environment()
        settings = Settings.model_validate({"mongo_url": environment["MONGO_URL"],
                                            "vk_api_url": environment["VK_API_URL"]})
        callback_url = f"http://127.0.0.1:{GATEWAY_PORT}/api/callback"
        status = await seed_demo_project(settings, callback_url)
        say("run", f"demo community {DEMO_GROUP_ID} → gateway callback server: {status}")
        say("run", "all up. Try:  make demo-post   (a scheduled post in the sandbox). Ctrl-C stops.")
        while not stop.is_set():
            if failure := supervisor.dead_child():
                say("run", failure)
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        return 0
    except Exception as exc:
        say("run", f"failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        await supervisor.stop_all()
        say("run", "stopped")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
