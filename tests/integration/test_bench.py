"""A short run of every benchmark stage against a real topology (members, logging instances,
facade): the table and the JSON hold a figure for each stage, concurrency and log size.
Only completeness is checked, never a timing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hazelog_tools.bench.results import (
    BARE,
    CLIENT,
    DIRECT,
    FACADE_GET,
    FACADE_POST,
    FACADE_POST_DURABLE,
    GET_DIRECT,
    GET_FACADE,
    GET_RESTARTED,
    PAGE_DEEP,
    PAGE_FIRST,
)
from tests.conftest import require
from tests.integration import postgres as pg
from tests.integration.support import MAPSTORE_JARS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_bench(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run it; past the time limit, SIGTERM it so it stops the topology it started."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    ) as process:
        try:
            out, err = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.terminate()
            out, err = process.communicate(timeout=120)
            pytest.fail(f"the benchmark took over 10 minutes:\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


IN_MEMORY_STAGES = "bare,direct,client,post,get,sizes,pages"


def short_run(jar: Path, out: Path, stages: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hazelog_tools.bench",
        "--stages",
        stages,
        "--concurrency",
        "1,4",
        "--sizes",
        "100,1000",
        "--get-size",
        "100",
        "--duration",
        "1",
        "--size-duration",
        "1",
        "--warmup",
        "1",
        # The fewest warm-up runs (3 of 1 s): this checks what is measured, not how warm.
        "--warmup-max",
        "3",
        "--runs",
        "1",
        "--jar",
        str(jar),
        "--out",
        str(out),
    ]


def test_every_stage_is_measured_without_errors(hazelcast_jar: Path, tmp_path: Path) -> None:
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")
    done = run_bench(short_run(hazelcast_jar, tmp_path, IN_MEMORY_STAGES))
    assert done.returncode == 0, done.stderr[-3000:]

    stages = [BARE, DIRECT, CLIENT, FACADE_POST, FACADE_GET]
    for stage in stages:
        for concurrency in (1, 4):
            assert f"| {stage} | {concurrency} |" in done.stdout
    for stage in (GET_FACADE, GET_DIRECT):
        for size in ("100", "1,000"):
            assert f"| {stage} | {size} |" in done.stdout

    data = json.loads((tmp_path / "latest.json").read_text())
    measured = {(f["stage"], f["concurrency"]) for f in data["throughput"]}
    assert measured == {(stage, c) for stage in stages for c in (1, 4)}
    assert {(f["stage"], f["size"]) for f in data["get_by_size"]} == {
        (stage, size)
        for stage in (GET_FACADE, GET_DIRECT, PAGE_FIRST, PAGE_DEEP)
        for size in (100, 1000)
    }
    for figure in data["throughput"] + data["get_by_size"]:
        assert figure["errors"] == 0, figure
        assert figure["rps"] > 0, figure
    # c64 was not run, so the POST targets stay unmeasured; the GET ones need 10k and 100k.
    assert all(target["met"] is None for target in data["targets"])
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")


def test_the_durable_stages_measure_posts_and_a_full_restart(
    hazelcast_jar: Path, tmp_path: Path
) -> None:
    """POST through a topology whose members keep the map in a throwaway PostgreSQL, next to
    the in-memory one; then every member stopped and started again: the whole log is back
    (the bench checks the count) and its GET is measured."""
    require(shutil.which("wrk") is not None, "wrk is not installed (Debian package wrk)")
    require(pg.available(), f"PostgreSQL binaries not found in {pg.BIN} (make system-deps)")
    for jar in MAPSTORE_JARS:
        require(jar.is_file(), f"{jar} is missing (make artifacts builds and fetches it)")
    done = run_bench(short_run(hazelcast_jar, tmp_path, "post,durable,restart"))
    assert done.returncode == 0, done.stderr[-3000:]

    for stage in (FACADE_POST, FACADE_POST_DURABLE):
        for concurrency in (1, 4):
            assert f"| {stage} | {concurrency} |" in done.stdout
    assert f"| {GET_RESTARTED} | 1,000 |" in done.stdout
    data = json.loads((tmp_path / "latest.json").read_text())
    measured = {(f["stage"], f["concurrency"]) for f in data["throughput"]}
    assert measured == {(s, c) for s in (FACADE_POST, FACADE_POST_DURABLE) for c in (1, 4)}
    [restarted] = data["get_by_size"]
    assert (restarted["stage"], restarted["size"]) == (GET_RESTARTED, 1000)
    [recovery] = data["full_restart"]
    assert recovery["messages"] == 1000
    assert 0 < recovery["members_ready_s"] <= recovery["log_back_s"]
    for figure in data["throughput"] + data["get_by_size"]:
        assert figure["errors"] == 0, figure
        assert figure["rps"] > 0, figure
    # c64 was not run: the PostgreSQL / in-memory ratio is not measured.
    assert all(target["met"] is None for target in data["targets"])
    # No throwaway server is left behind.
    assert not list(Path(tempfile.gettempdir()).glob("hazelog-pg-*/data/postmaster.pid"))
