"""GET /metrics of every service: Prometheus text whose counters move with real requests
(each app has its own registry, so several apps in this process do not mix their counts)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hazelog.config import MessagesConfig
from hazelog.messages.app import create_app as create_messages_app
from tests.unit.servers import dead_url, fake_backend, fetch, fetch_json, serve_app
from tests.unit.test_facade import config, facade, server_error, store_ok
from tests.unit.test_logging_service import U1, U2, U3, FakeStore, logging_instance

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    status, headers, body = await fetch("GET", url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_requests_are_counted_by_route_and_status_with_latency() -> None:
    async with serve_app(create_messages_app(MessagesConfig())) as url:
        before = await scrape(url)
        for _ in range(3):
            await fetch("GET", url + "/")
        await fetch("GET", url + "/no/such/path")
        after = await scrape(url)
    ok = {"route": "/", "method": "GET", "status": "200"}
    assert value(before, "hazelog_http_requests_total", **ok) == 0
    assert value(after, "hazelog_http_requests_total", **ok) == 3
    missing = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "hazelog_http_requests_total", **missing) == 1
    count = value(after, "hazelog_http_request_duration_seconds_count", route="/", method="GET")
    assert count == 3


async def test_logging_instance_counts_messages_batches_and_map_size() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        await fetch_json("POST", url + "/", json={"uuid": U1, "msg": "one"})
        await fetch_json("POST", url + "/", json={"uuid": U1, "msg": "one"})
        await fetch_json("POST", url + "/", json={"uuid": U1, "msg": "other"})
        batch = [{"uuid": U2, "msg": "two"}, {"uuid": U3, "msg": "three"}]
        await fetch_json("POST", url + "/batch", json={"messages": batch})
        store.failing = True
        status, _ = await fetch_json("POST", url + "/", json={"uuid": U2, "msg": "two"})
        assert status == 503
        store.failing = False
        samples = await scrape(url)
    assert value(samples, "hazelog_messages_received_total") == 5
    assert value(samples, "hazelog_messages_stored_total", result="created") == 3
    assert value(samples, "hazelog_messages_stored_total", result="repeat") == 1
    assert value(samples, "hazelog_messages_stored_total", result="conflict") == 1
    assert value(samples, "hazelog_batch_size_count") == 1
    assert value(samples, "hazelog_batch_size_sum") == 2
    assert value(samples, "hazelog_store_operation_errors_total", operation="put_if_absent") == 1
    ops = value(
        samples, "hazelog_store_operation_duration_seconds_count", operation="put_if_absent"
    )
    assert ops == 6
    assert value(samples, "hazelog_map_size") == 3


async def test_map_size_is_minus_one_while_the_store_fails() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        store.failing = True
        samples = await scrape(url)
    assert value(samples, "hazelog_map_size") == -1
    assert value(samples, "hazelog_store_operation_errors_total", operation="size") == 1


async def test_facade_counts_failover_attempts_cooldowns_and_accepted_messages() -> None:
    async with (
        fake_backend(server_error) as bad,
        fake_backend(store_ok) as good,
        facade(config([bad.url, good.url, dead_url()])) as url,
    ):
        status, _ = await fetch_json("POST", url + "/", data=b"hello")
        assert status == 201
        samples = await scrape(url)
    assert (
        value(samples, "hazelog_facade_backend_attempts_total", instance=bad.url, outcome="failed")
        == 1
    )
    assert (
        value(samples, "hazelog_facade_backend_attempts_total", instance=good.url, outcome="ok")
        == 1
    )
    assert value(samples, "hazelog_facade_cooldowns_total", instance=bad.url) == 1
    assert value(samples, "hazelog_facade_cooldowns_total", instance=good.url) == 0
    assert value(samples, "hazelog_facade_instance_in_cooldown", instance=bad.url) == 1
    assert value(samples, "hazelog_facade_instance_in_cooldown", instance=good.url) == 0
    assert value(samples, "hazelog_facade_messages_accepted_total", status="201") == 1
    assert value(samples, "hazelog_facade_batch_size_count") == 1
    route = {"route": "/", "method": "POST", "status": "201"}
    assert value(samples, "hazelog_http_requests_total", **route) == 1
