"""The benchmark's own pieces (wrk output, medians, targets, the table) and a short smoke run
of `python -m hazelog_tools.bench` against the bare Sanic baseline (no members needed).

No timing is asserted: only that the bench measures, counts and reports what it claims."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hazelog_tools.bench.results import (
    DIRECT,
    FACADE_POST,
    FACADE_POST_DURABLE,
    GET_FACADE,
    Figure,
    Measurement,
    Recovery,
    evaluate_targets,
    report_text,
)
from hazelog_tools.bench.storage import percentile
from hazelog_tools.bench.warmup import settled, slices
from hazelog_tools.bench.wrk import (
    Load,
    WrkError,
    WrkRun,
    find_wrk,
    parse_output,
    run_wrk,
    write_scripts,
)
from tests.conftest import require
from tests.unit.servers import fake_backend

REPO = Path(__file__).resolve().parents[2]


def wrk_line(**fields: int) -> str:
    data = {
        "requests": 1000,
        "duration_us": 2_000_000,
        "connect": 0,
        "read": 0,
        "write": 0,
        "status": 0,
        "timeout": 0,
        "p50_us": 1500,
        "p99_us": 9000,
    }
    data.update(fields)
    return "Running 2s test @ http://x/\nHAZELOG_BENCH " + json.dumps(data) + "\n"


def test_wrk_output_is_read_from_our_result_line() -> None:
    m = parse_output(wrk_line(requests=3000, duration_us=1_500_000, status=4, timeout=1))
    assert m.requests == 3000
    assert m.rps == 3000 / 1.5
    assert (m.p50_ms, m.p99_ms) == (1.5, 9.0)
    assert m.errors == 5


def test_wrk_output_without_a_result_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="no result line"):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def run(rps: float, p50: float = 1.0, errors: int = 0) -> Measurement:
    return Measurement(
        requests=int(rps * 10), seconds=10.0, p50_ms=p50, p99_ms=p50 * 3, errors=errors
    )


def test_a_figure_is_the_median_of_its_runs_and_the_sum_of_their_errors() -> None:
    figure = Figure("s", 16, [run(100, 5.0), run(300, 1.0, errors=2), run(200, 3.0, errors=1)])
    assert figure.rps == 200
    assert figure.p50_ms == 3.0
    assert figure.errors == 3


def figures(
    direct: tuple[float, float],
    post: tuple[float, float],
    errors: int = 0,
    durable: float = 700,
    durable_errors: int = 0,
) -> list[Figure]:
    return [
        Figure(DIRECT, 1, [run(direct[0])]),
        Figure(DIRECT, 64, [run(direct[1])]),
        Figure(FACADE_POST, 1, [run(post[0])]),
        Figure(FACADE_POST, 64, [run(post[1], errors=errors)]),
        Figure(FACADE_POST_DURABLE, 64, [run(durable, errors=durable_errors)]),
    ]


def sizes(p50_10k: float, p50_100k: float) -> list[Figure]:
    return [
        Figure(GET_FACADE, 1, [run(1, p50_10k)], size=10_000),
        Figure(GET_FACADE, 1, [run(1, p50_100k)], size=100_000),
    ]


def met(throughput: list[Figure], by_size: list[Figure]) -> list[bool | None]:
    return [t.met for t in evaluate_targets(throughput, by_size)]


def test_targets_are_met_by_good_ratios() -> None:
    assert met(figures((500, 2000), (400, 1200)), sizes(100, 1100)) == [True] * 6


def test_targets_each_fail_on_their_own_ratio() -> None:
    assert met(figures((500, 2000), (400, 900)), sizes(100, 1100))[0] is False
    assert met(figures((500, 2000), (400, 1200), errors=1), sizes(100, 1100))[0] is False
    assert met(figures((500, 900), (400, 1200)), sizes(100, 1100))[1:3] == [False, True]
    assert met(figures((500, 2000), (700, 1200)), sizes(100, 1100))[1:3] == [True, False]
    assert met(figures((500, 2000), (400, 1200)), sizes(100, 1300))[3:5] == [False, True]
    assert met(figures((500, 2000), (400, 1200)), sizes(200, 2100))[3:5] == [True, False]
    # PostgreSQL-backed POST c64: at least half the in-memory one, without errors.
    assert met(figures((500, 2000), (400, 1200), durable=590), sizes(100, 1100))[5] is False
    assert met(figures((500, 2000), (400, 1200), durable=610), sizes(100, 1100))[5] is True
    kept = figures((500, 2000), (400, 1200), durable_errors=1)
    assert met(kept, sizes(100, 1100))[5] is False


def test_targets_not_measured_are_reported_as_such() -> None:
    assert met([], []) == [None] * 6


def test_the_table_has_a_row_per_measured_figure() -> None:
    throughput = figures((500, 2000), (400, 1200))
    throughput.append(Figure("never run", 1))
    recovery = Recovery(messages=100_000, stop_s=3.2, members_ready_s=11.5, log_back_s=24.25)
    targets = evaluate_targets(throughput, [])
    text = report_text(throughput, sizes(100, 1100), targets, [recovery])
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert f"| {DIRECT} | 64 | 2,000 |" in text
    assert f"| {FACADE_POST_DURABLE} | 64 | 700 |" in text
    assert f"| {GET_FACADE} | 100,000 | 1,100.00 |" in text
    assert "| 100,000 | 3.2 | 11.5 | 24.2 |" in text
    assert "never run" not in text
    # A header row each: 5 throughput rows, 2 size rows, 1 restart and 6 targets.
    assert len(rows) == (1 + 5) + (1 + 2) + (1 + 1) + (1 + 6)
    assert recovery.as_json() == {
        "messages": 100_000,
        "stop_s": 3.2,
        "members_ready_s": 11.5,
        "log_back_s": 24.25,
    }


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) == 0.0


async def test_wrk_posts_a_fresh_valid_uuid_and_message_every_time(tmp_path: Path) -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")

    async def created(request: web.Request) -> web.Response:
        return web.json_response({"stored": True}, status=201)

    scripts = write_scripts(tmp_path)
    async with fake_backend(created) as backend:
        measured = await run_wrk(find_wrk(), WrkRun(backend.url, Load.POST_JSON, 4, 1), scripts)
    bodies: list[Any] = backend.posted
    assert measured.requests > 0
    assert measured.errors == 0
    assert len(bodies) >= measured.requests
    uuids = [str(uuid.UUID(body["uuid"])) for body in bodies]
    assert uuids == [body["uuid"] for body in bodies]
    assert len(set(uuids)) == len(uuids)
    assert len({body["msg"] for body in bodies}) == len(bodies)


async def test_wrk_counts_error_answers(tmp_path: Path) -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")

    async def unavailable(request: web.Request) -> web.Response:
        return web.json_response({"error": "unavailable", "detail": "x"}, status=503)

    async with fake_backend(unavailable) as backend:
        run_ = WrkRun(backend.url, Load.POST_TEXT, 1, 1)
        measured = await run_wrk(find_wrk(), run_, write_scripts(tmp_path))
    assert measured.requests > 0
    assert measured.errors == measured.requests


def test_smoke_run_against_bare_sanic_prints_the_table_and_writes_json_and_plot(
    tmp_path: Path,
) -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")
    command = [
        sys.executable,
        "-m",
        "hazelog_tools.bench",
        "--stages",
        "bare",
        "--concurrency",
        "1,4",
        "--duration",
        "1",
        "--warmup",
        "1",
        "--warmup-max",
        "6",
        "--runs",
        "2",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| bare Sanic POST |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "4"]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert [(f["stage"], f["concurrency"]) for f in data["throughput"]] == [
        ("bare Sanic POST", 1),
        ("bare Sanic POST", 4),
    ]
    for figure in data["throughput"]:
        assert len(figure["runs"]) == 2
        assert figure["rps"] > 0
        assert figure["errors"] == 0
    warm_up = data["meta"]["warmup"]["bare Sanic POST"]
    assert 3 <= len(warm_up["slices_req_s"]) <= 6
    assert all(rate > 0 for rate in warm_up["slices_req_s"])
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")
    assert all(t["met"] is None for t in data["targets"])


def test_a_warm_up_is_settled_once_two_slices_stop_climbing() -> None:
    assert not settled([1000, 1500])  # too few to tell
    assert not settled([1000, 1500, 1600])  # still climbing
    assert not settled([1000, 1500, 1520, 1700])  # the last slice climbed again
    assert settled([1000, 1500, 1520, 1540])  # within 5 % of the best before them
    assert settled([1000, 1500, 1400, 1450])  # a fall is noise, not warming
    assert settled([1000, 1500, 1560, 1570], climb=0.05)
    assert not settled([1000, 1500, 1560, 1580], climb=0.05)


def test_warm_up_slices_are_at_least_three_and_bounded() -> None:
    assert slices(1, 90, 5) == (3, 18)
    assert slices(40, 90, 5) == (8, 18)
    assert slices(100, 90, 5) == (20, 20)  # a minimum above the maximum wins
    assert slices(1, 6, 1) == (3, 6)
