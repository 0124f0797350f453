"""GET /status: each logging instance as the facade sees it, and the cluster as a ready
instance's client sees it (a real logging app over the in-memory store; one instance dead)."""

from __future__ import annotations

from tests.unit.servers import dead_url, fetch, fetch_json
from tests.unit.test_facade import config, facade
from tests.unit.test_logging_service import CONFIG, FakeStore, logging_instance


async def test_status_json_shows_ready_and_down_instances_and_the_cluster() -> None:
    store = FakeStore()
    dead = dead_url()
    async with logging_instance(store) as live, facade(config([live + "/", dead])) as url:
        status, _ = await fetch_json("POST", url + "/", data=b"hello")
        assert status == 201
        status, body = await fetch_json("GET", url + "/status")
    assert status == 200
    by_url = {entry["url"]: entry for entry in body["instances"]}
    assert by_url[live + "/"]["state"] == "ready"
    assert by_url[live + "/"]["messages_received"] == 1
    assert by_url[dead]["state"] == "down"
    assert by_url[dead]["messages_received"] is None
    cluster = body["cluster"]
    assert cluster["seen_by"] == live + "/"
    assert cluster["members"] == CONFIG.members
    assert cluster["map_size"] == 1
    assert cluster["safe"] is None  # no member answers its health endpoint here


async def test_status_remembers_the_last_error_and_the_cooldown() -> None:
    dead = dead_url()
    async with logging_instance(FakeStore()) as live, facade(config([dead, live + "/"])) as url:
        status, _ = await fetch_json("POST", url + "/", data=b"hello")
        assert status == 201
        _, body = await fetch_json("GET", url + "/status")
    [down, up] = body["instances"]
    assert down["in_cooldown"] is True
    assert "Connect" in down["last_error"]
    assert up["in_cooldown"] is False
    assert up["last_error"] is None


async def test_status_is_a_page_for_a_browser() -> None:
    dead = dead_url()
    async with logging_instance(FakeStore()) as live, facade(config([live + "/", dead])) as url:
        accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        status, headers, page = await fetch("GET", url + "/status", headers={"Accept": accept})
        _, curl_headers, _ = await fetch("GET", url + "/status", headers={"Accept": "*/*"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert curl_headers["Content-Type"].startswith("application/json")
    text = page.decode()
    assert f'<td>{live}/</td><td class="state ready">ready</td>' in text
    assert f'<td>{dead}</td><td class="state down">down</td>' in text
