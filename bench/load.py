"""Driving the load generators from the benchmarks: ``wrk`` (closed loop) and :mod:`bench.loadgen`.

``wrk`` (Debian's 4.1, C, one thread) measures the throughput ceiling; a Lua script
rotates prebuilt POST requests and prints its summary as JSON. When ``wrk`` is not
installed the Python generator's closed loop stands in (the JSON says which ran).
Fixed-rate latency always uses :mod:`bench.loadgen` (``wrk -R`` is wrk2, not in Debian).

Each run returns the generator's own CPU use, so the report shows it was not the limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.processes import PYTHON, ROOT, CpuWatch

WRK = shutil.which("wrk")

_LUA = """
local bodies = {%(bodies)s}
local requests = {}
local counter = 0
init = function(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("%(method)s", "%(path)s", {["Content-Type"] = "application/json"}, body)
  end
end
request = function()
  counter = counter %% #requests + 1
  return requests[counter]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeout_errors":%%d,"p50_us":%%d,"p90_us":%%d,' ..
    '"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def _lua_string(text: str) -> str:
    level = "=" * 4
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def write_spec(directory: Path, host: str, port: int, path: str,
               bodies: Sequence[str], method: str = "POST") -> Path:
    spec = directory / f"spec-{port}-{abs(hash(path)) % 10_000}.json"
    spec.write_text(json.dumps({"host": host, "port": port, "path": path, "method": method,
                                "bodies": list(bodies)}))
    return spec


async def run_wrk(url_base: str, path: str, bodies: Sequence[str], *, connections: int,
                  duration: float, server_pids: Mapping[str, int], threads: int = 1,
                  method: str = "POST") -> dict[str, Any]:
    """Closed loop for ``duration`` s; throughput, latency, and CPU of generator and servers."""
    if WRK is None:
        return await run_loadgen_closed(url_base, path, bodies, connections=connections,
                                        duration=duration, server_pids=server_pids, method=method)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA % {"bodies": ", ".join(_lua_string(body) for body in bodies),
                                  "method": method, "path": path})
        out_path = Path(tmp) / "out.txt"
        args = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
                "--timeout", "10s", "-s", str(script), url_base + path]
        with out_path.open("wb") as out:
            popen = await asyncio.to_thread(subprocess.Popen, args, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=tmp)
        with CpuWatch(server_pids) as watch:
            _, status, usage = await asyncio.to_thread(os.wait4, popen.pid, 0)
        popen.returncode = os.waitstatus_to_exitcode(status)
        output = out_path.read_text()
    line = next((line for line in output.splitlines() if line.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {output[-800:]}")
    data = json.loads(line[len("WRKJSON "):])
    seconds = data["duration_us"] / 1e6
    generator_percent = round(100 * (usage.ru_utime + usage.ru_stime) / seconds, 1)
    watch.attribute("wrk", generator_percent)
    errors = sum(data[key] for key in ("status_errors", "connect_errors", "read_errors",
                                       "write_errors", "timeout_errors"))
    return {
        "generator": f"wrk -t{threads} -c{connections}", "requests": data["requests"],
        "seconds": round(seconds, 3), "rps": round(data["requests"] / seconds, 1),
        "errors": errors, "non_2xx": data["status_errors"],
        "latency_ms": {"p50": data["p50_us"] / 1000, "p90": data["p90_us"] / 1000,
                       "p99": data["p99_us"] / 1000, "max": data["max_us"] / 1000},
        "generator_cpu_percent": generator_percent,
        "cpu": watch.report(),
    }


async def _loadgen(spec: Path, args: Sequence[str], server_pids: Mapping[str, int]
                   ) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "bench.loadgen", str(spec), *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    with CpuWatch(server_pids) as watch:
        out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.decode()[-800:]}")
    result: dict[str, Any] = json.loads(out)
    watch.attribute("loadgen", float(result.get("generator_cpu_percent") or 0.0))
    result["cpu"] = watch.report()
    return result


async def run_loadgen_closed(url_base: str, path: str, bodies: Sequence[str], *,
                             connections: int, duration: float, server_pids: Mapping[str, int],
                             method: str = "POST") -> dict[str, Any]:
    host, port = _host_port(url_base)
    with tempfile.TemporaryDirectory(prefix="bench-loadgen-") as tmp:
        spec = write_spec(Path(tmp), host, port, path, bodies, method)
        result = await _loadgen(spec, ["--mode", "closed", "--duration", str(duration),
                                       "--warmup", "0.5", "--connections", str(connections)],
                                server_pids)
    result["generator"] = f"bench.loadgen closed -c{connections}"
    result["rps"] = result["achieved_rps"]
    return result


async def run_open_loop(url_base: str, path: str, bodies: Sequence[str], *, rate: float,
                        duration: float, server_pids: Mapping[str, int], connections: int = 128,
                        warmup: float = 1.0, method: str = "POST") -> dict[str, Any]:
    host, port = _host_port(url_base)
    with tempfile.TemporaryDirectory(prefix="bench-loadgen-") as tmp:
        spec = write_spec(Path(tmp), host, port, path, bodies, method)
        result = await _loadgen(spec, ["--mode", "open", "--rate", str(rate), "--duration",
                                       str(duration), "--warmup", str(warmup),
                                       "--connections", str(connections)], server_pids)
    result["generator"] = f"bench.loadgen open {rate:g}/s"
    return result


def _host_port(url_base: str) -> tuple[str, int]:
    host, _, port = url_base.removeprefix("http://").partition(":")
    return host, int(port)
