"""``python -m tools.vk_sandbox``: starts fast, logs ready, serves, stops on signals."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tools.vk_sandbox import DEMO_USER_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(rb"ready on http://127\.0\.0\.1:(\d+)")


@pytest.mark.integration  # runs a process
class TestCommandLine:
    @pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
    async def test_run_and_stop(self, stop_signal: signal.Signals) -> None:
        """It logs a ready line within a few seconds, serves the demo, and exits 0 on a signal."""
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tools.vk_sandbox", "--host", "127.0.0.1", "--port", "0",
            "--demo", "--retry-scale", "0.001",
            cwd=REPO_ROOT, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
        assert process.stderr is not None
        try:
            port = None
            while port is None:
                line = await asyncio.wait_for(process.stderr.readline(), timeout=10)
                assert line, "exited before ready"
                if match := READY.search(line):
                    port = int(match[1])
            assert time.monotonic() - started < 5
            async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{port}/method/wall.get",
                data={"access_token": DEMO_USER_TOKEN, "v": "5.199", "owner_id": "-1"},
            ) as response:
                assert await response.json() == {"response": {"count": 0, "items": []}}
            process.send_signal(stop_signal)
            assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
