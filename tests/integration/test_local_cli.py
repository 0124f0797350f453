"""`hazelog local up|status|down` as a user runs it, on free ports."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from hazelog_tools.local.processes import Running, load_state, ports_in_use
from hazelog_tools.local.runner import hazelog_command
from hazelog_tools.local.topology import Ports
from tests.integration.support import HOST, free_port_offset, http

pytestmark = pytest.mark.integration


def local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hazelog_command(), "local", *args], capture_output=True, text=True, timeout=300
    )


def test_local_up_then_down_leaves_no_process(hazelcast_jar: Path, tmp_path: Path) -> None:
    base = tmp_path / "local"
    offset = free_port_offset()
    ports = Ports().shifted(offset)
    common = ["--base-dir", str(base)]
    try:
        up = local("up", *common, "--port-offset", str(offset), "--jar", str(hazelcast_jar))
        assert up.returncode == 0, up.stderr
        processes = load_state(base / "state.json")
        assert {process.name for process in processes} == {
            *(f"member-{port}" for port in ports.members),
            *(f"logging-{port}" for port in ports.logging),
            "messages",
            "facade",
        }
        for process in processes:
            assert process.alive(), process.name
            assert str(process.pid) in up.stdout
            assert str(process.log_path) in up.stdout

        facade = f"http://{HOST}:{ports.facade}/"
        status, body = http("POST", facade, b"hello from the CLI test")
        assert status == 201, body
        status, body = http("GET", facade, headers={"Accept": "application/json"})
        assert status == 200
        assert [m["msg"] for m in json.loads(body)["messages"]] == ["hello from the CLI test"]

        assert local("status", *common).returncode == 0
        again = local("up", *common, "--port-offset", str(offset), "--jar", str(hazelcast_jar))
        assert again.returncode != 0
        assert "already running" in again.stderr

        down = local("down", *common)
        assert down.returncode == 0, down.stderr
        assert not [process.name for process in processes if process.alive()]
        assert not (base / "state.json").exists()
        assert local("status", *common).returncode == 3
        assert ports_in_use(HOST, ports.all()) == []
    finally:
        local("down", *common)


def test_local_up_refuses_a_taken_port(hazelcast_jar: Path, tmp_path: Path) -> None:
    base = tmp_path / "local"
    offset = free_port_offset()
    taken = Ports().shifted(offset).logging[1]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((HOST, taken))
        holder.listen()
        up = local(
            "up", "--base-dir", str(base), "--port-offset", str(offset), "--jar", str(hazelcast_jar)
        )
    assert up.returncode == 1
    assert len(up.stderr.strip().splitlines()) == 1
    assert str(taken) in up.stderr
    # Nothing was started: no state, no logs.
    assert not base.exists()


def test_local_up_failure_stops_everything_and_shows_the_log(java: str, tmp_path: Path) -> None:
    base = tmp_path / "local"
    offset = free_port_offset()
    broken_jar = tmp_path / "broken.jar"
    broken_jar.write_text("not a jar")
    up = local(
        "up", "--base-dir", str(base), "--port-offset", str(offset), "--jar", str(broken_jar)
    )
    assert up.returncode == 1
    assert "exited before it was ready" in up.stderr
    # The tail of the failed member's log, where Java says what is wrong.
    assert "jarfile" in up.stderr.lower()
    assert not (base / "state.json").exists()
    assert ports_in_use(HOST, Ports().shifted(offset).all()) == []


def test_ctrl_c_during_up_stops_what_it_started(hazelcast_jar: Path, tmp_path: Path) -> None:
    base = tmp_path / "local"
    offset = free_port_offset()
    argv = ["up", "--base-dir", str(base), "--port-offset", str(offset)]
    up = subprocess.Popen(
        [*hazelog_command(), "local", *argv, "--jar", str(hazelcast_jar)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Interrupt while the members start: they are recorded as soon as they are spawned.
        deadline = time.monotonic() + 60
        processes: list[Running] = []
        while len(processes) < 3 and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(ValueError):
                processes = load_state(base / "state.json")
        assert len(processes) >= 3, "local up recorded no members"
        up.send_signal(signal.SIGINT)
        _, stderr = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
        local("down", "--base-dir", str(base))
    assert up.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not [process.name for process in processes if process.alive()]
    assert not (base / "state.json").exists()
