"""The facade's /status page in a real browser (headless Chromium) over real members: every
logging instance shown ready, then one stopped with its member (what `systemctl stop
logging@20002` does) and shown down. The test saves the page's screenshot under .cache/screenshots/
(docs/status.png, which the README shows, is a copy of one)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration.support import REPO, Topology, http, post_message

pytestmark = pytest.mark.integration

# Where the run leaves its screenshot (docs/status.png in the README is a copy of one).
SCREENSHOT = REPO / ".cache" / "screenshots" / "status.png"
# Bound for the facade to see a stopped instance as down; not a timing assertion.
SETTLE_WAIT = 30.0


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    require(path is not None, "chromium is not installed (scripts/system-deps.sh installs it)")
    assert path is not None
    return path


def browse(chromium: str, profile: Path, *args: str) -> str:
    # --no-sandbox: tests run as root here, where Chromium's sandbox refuses to start.
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1100,620",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def page_states(chromium: str, profile: Path, url: str) -> dict[str, str]:
    """instance URL -> the state the page shows for it, read from the browser's DOM."""
    dom = browse(chromium, profile, "--dump-dom", url)
    states = {}
    for row in dom.split('<tr class="instance"')[1:]:
        instance = row.split("<td>", 1)[1].split("</td>", 1)[0]
        states[instance] = row.split('data-state="', 1)[1].split('"', 1)[0]
    return states


def facade_status(topology: Topology) -> dict[str, str]:
    status, body = http("GET", topology.facade_url + "status")
    assert status == 200, body
    return {entry["url"]: entry["state"] for entry in json.loads(body)["instances"]}


def settle(topology: Topology, expected: dict[str, str]) -> None:
    deadline = time.monotonic() + SETTLE_WAIT
    while facade_status(topology) != expected and time.monotonic() < deadline:
        time.sleep(0.5)


def test_status_page_shows_a_stopped_instance_down(
    topology: Topology, chromium: str, tmp_path: Path
) -> None:
    for text in ("one", "two", "three"):
        assert post_message(topology, text)[0] == 201
    urls = [f"http://127.0.0.1:{port}/" for port in topology.ports.logging]
    page = topology.facade_url + "status"
    profile = tmp_path / "chromium"

    settle(topology, dict.fromkeys(urls, "ready"))
    assert page_states(chromium, profile, page) == dict.fromkeys(urls, "ready")

    # What `systemctl stop logging@PORT` does to the third instance: it and its member stop.
    assert topology.stop(topology.logging_names[2])
    topology.stop(topology.member_names[2])
    expected = {**dict.fromkeys(urls[:2], "ready"), urls[2]: "down"}
    settle(topology, expected)
    assert page_states(chromium, profile, page) == expected

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browse(chromium, profile, f"--screenshot={SCREENSHOT}", page)
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")
