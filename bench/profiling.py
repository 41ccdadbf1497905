"""Where a service's CPU time goes: ``py-spy record`` on its PID, summarised.

The raw (collapsed-stack) output is kept next to the results; the summary attributes
every sample to the library of its innermost library frame (pymongo, aio-pika, aiohttp,
structlog, ...), for the gateway also to the part of its request handler, and lists
the functions with the most *self* samples. Time inside a C call — a ``send()`` on a
socket, including the wait for a CPU when the machine is saturated — is the calling
Python line's self time. ``--nonblocking`` keeps py-spy from pausing the process.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.processes import ROOT

PY_SPY = shutil.which("py-spy") or (str(ROOT / ".venv" / "bin" / "py-spy")
                                    if (ROOT / ".venv" / "bin" / "py-spy").exists() else None)

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")

# Inside the gateway's handler: the frame right below handle_callback decides.
_HANDLER_PARTS = (
    ("GroupCommit.commit", "handler: join a batch (its publish runs in a committer task)"),
    ("callback_event_json", "handler: serialise the event (orjson)"),
    ("structlog", "handler: log line (structlog JSON + write)"),
    ("parse_callback", "handler: parse + validate body (orjson, fast checks)"),
    ("ProjectDirectory.lookup", "handler: project lookup (TTL cache)"),
    ("accepts_secret", "handler: secret check"),
    ("new_correlation_id", "handler: correlation id (uuid4)"),
    ("metrics", "handler: prometheus metrics"),
    ("prometheus_client", "handler: prometheus metrics"),
    ("plain", "handler: response object"),
    ("BaseRequest.read", "handler: read body"),
)


def _function(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"].split("site-packages/")[-1]


_LIBRARIES = (
    ("pymongo/", "MongoDB driver (pymongo)"), ("bson/", "MongoDB driver (pymongo)"),
    ("aiormq/", "AMQP (aio-pika/aiormq)"), ("aio_pika/", "AMQP (aio-pika/aiormq)"),
    ("pamqp/", "AMQP (aio-pika/aiormq)"), ("aiohttp/", "HTTP (aiohttp)"),
    ("yarl/", "HTTP (aiohttp)"), ("multidict/", "HTTP (aiohttp)"),
    ("structlog/", "logging (structlog)"), ("shared/logging.py", "logging (structlog)"),
    ("pydantic", "pydantic"), ("prometheus_client/", "metrics (prometheus_client)"),
    ("services/", "service code"), ("shared/", "service code"),
)


def library(frames: list[str]) -> str:
    """The library of the innermost frame that belongs to one (else the event loop)."""
    for frame in reversed(frames):
        _, file = _function(frame)
        for needle, name in _LIBRARIES:
            if needle in file:
                return name
    return "event loop (asyncio)"


def handler_part(frames: list[str]) -> str | None:
    """For a gateway sample inside ``handle_callback``: which part of the handler."""
    names = [_function(frame) for frame in frames]
    if any(function.endswith("_commit_queued") for function, _ in names):
        return "group commit: publish batches, await confirms (committer tasks)"
    for index, (function, _) in enumerate(names):
        if function == "handle_callback":
            if index + 1 == len(names):
                return "handler: own code"
            child, child_file = names[index + 1]
            label = child + " " + child_file
            for needle, category in _HANDLER_PARTS:
                if needle in label:
                    return category
            return "handler: other"
    return None


def summarise(raw: str, top: int = 12) -> dict[str, Any]:
    total = 0
    libraries: Counter[str] = Counter()
    handler: Counter[str] = Counter()
    own: Counter[str] = Counter()
    socket_writes = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        libraries[library(frames)] += count
        part = handler_part(frames)
        handler[part or "outside the handler (HTTP server, AMQP I/O tasks, loop)"] += count
        function, file = _function(frames[-1])
        own[f"{function} ({file})"] += count
        if function.endswith("Transport.write"):
            socket_writes += count
    if total == 0:
        return {"samples": 0}

    def percent(counter: Counter[str], limit: int | None = None) -> dict[str, float]:
        return {name: round(100 * count / total, 1) for name, count in counter.most_common(limit)}

    summary: dict[str, Any] = {
        "samples": total,
        "by_library_percent": percent(libraries),
        "top_self_percent": percent(own, top),
        "socket_write_self_percent": round(100 * socket_writes / total, 1),
    }
    if len(handler) > 1:
        summary["gateway_handler_percent"] = percent(handler)
    return summary


async def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    """Start ``py-spy record`` on ``pid`` for ``seconds`` (returns at once; None if absent)."""
    if PY_SPY is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return await asyncio.to_thread(
        subprocess.Popen, [PY_SPY, "record", "-p", str(pid), "-d", str(max(1, round(seconds))),
                           "-r", str(rate), "-f", "raw", "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def collect(spy: subprocess.Popen[bytes] | None, out: Path) -> dict[str, Any]:
    if spy is None:
        return {"skipped": "py-spy not installed"}
    _, err = await asyncio.to_thread(spy.communicate)
    raw = await asyncio.to_thread(lambda: out.read_text() if out.exists() else None)
    if spy.returncode != 0 or raw is None:
        return {"skipped": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
    summary = summarise(raw)
    summary["raw"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    return summary
