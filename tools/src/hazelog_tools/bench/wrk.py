"""Load from wrk: the Lua scripts that make each request (a unique message every time), the
command line, and reading wrk's result back from the line our Lua `done` hook prints."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hazelog_tools.bench.results import Measurement

RESULT_MARK = "HAZELOG_BENCH "

# Prints what wrk measured as one JSON line (latencies in microseconds). wrk counts an answer
# >= 400 as a "status" error and a request still open after --timeout as a "timeout" error.
_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'HAZELOG_BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

# Every thread numbers its requests from its own offset, so messages never repeat; the UUID
# prefix (8-4-4-4 of a fresh uuid4) comes from the command line, the last 12 digits count.
_COUNTER = """
local counter = 0
local prefix = "00000000-0000-4000-8000"
local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count * 2^40)
  thread_count = thread_count + 1
end

function init(args)
  if args[1] then prefix = args[1] end
  counter = offset or 0
end
"""

_POST_TEXT = (
    _COUNTER
    + """
function request()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "text/plain"},
                    string.format("bench message %d", counter))
end
"""
    + _DONE
)

_POST_JSON = (
    _COUNTER
    + """
function request()
  counter = counter + 1
  local body = string.format('{"uuid":"%s-%012x","msg":"bench message %d"}',
                             prefix, counter, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""
    + _DONE
)

_GET = _DONE


class Load(StrEnum):
    """What each request is."""

    POST_TEXT = "post-text"  # the facade's plain-text POST
    POST_JSON = "post-json"  # a logging instance's POST {"uuid", "msg"}
    GET = "get"

    @property
    def script(self) -> str:
        return {Load.POST_TEXT: _POST_TEXT, Load.POST_JSON: _POST_JSON, Load.GET: _GET}[self]


class WrkError(Exception):
    pass


@dataclass(frozen=True)
class WrkRun:
    url: str
    load: Load
    concurrency: int
    duration: float
    # Seconds before wrk gives up on one request (and counts a timeout error).
    timeout: float = 10.0

    def argv(self, wrk: str, script: Path) -> list[str]:
        # One wrk thread: wrk is on the same 2 cores as everything it measures.
        # Keep-alive is wrk's default (HTTP/1.1, one connection per concurrent client).
        return [
            wrk,
            "-t1",
            f"-c{self.concurrency}",
            # wrk takes whole seconds only.
            f"-d{max(1, math.ceil(self.duration))}s",
            f"--timeout={max(1, math.ceil(self.timeout))}s",
            "-s",
            str(script),
            self.url,
            "--",
            str(uuid.uuid4())[:23],
        ]


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed (Debian package wrk; `make system-deps`)")
    return path


def write_scripts(directory: Path) -> dict[Load, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for load in Load:
        path = directory / f"{load.value}.lua"
        path.write_text(load.script, encoding="utf-8")
        paths[load] = path
    return paths


def parse_output(stdout: str) -> Measurement:
    """The Measurement from wrk's output (the line our `done` hook wrote)."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            data = json.loads(line.removeprefix(RESULT_MARK))
            break
    else:
        raise WrkError(f"wrk printed no result line:\n{stdout.strip()}")
    seconds = data["duration_us"] / 1e6
    errors = sum(data[key] for key in ("connect", "read", "write", "status", "timeout"))
    return Measurement(
        requests=data["requests"],
        seconds=seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


async def run_wrk(wrk: str, run: WrkRun, scripts: dict[Load, Path]) -> Measurement:
    process = await asyncio.create_subprocess_exec(
        *run.argv(wrk, scripts[run.load]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout = out.decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise WrkError(f"wrk exited with {process.returncode}:\n{stdout.strip()}")
    return parse_output(stdout)
