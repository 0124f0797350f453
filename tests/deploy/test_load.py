"""The load generator itself, against a small loopback server (no lab needed)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.deploy.load import Load, LoadResult, Outcome, check_target
from tests.deploy.network import TargetNotAllowed


class Store(BaseHTTPRequestHandler):
    """Stores every POST and answers 201 with a UUID, except every 5th request (503)."""

    received: ClassVar[list[str]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with self.lock:
            self.received.append(body)
            count = len(self.received)
        if count % 5 == 0:
            self._answer(503, {"error": "no_logging_instance", "detail": "test"})
        else:
            self._answer(201, {"uuid": str(uuid.uuid4())})

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    Store.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "http://example.com/", "http://192.168.1.10:8080/", "http://[::2]/"]
)
def test_refuses_targets_outside_loopback_and_the_hosts_network(url: str) -> None:
    with pytest.raises(TargetNotAllowed):
        check_target(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://localhost/"])
def test_accepts_loopback(url: str) -> None:
    check_target(url)


def test_sends_exactly_the_counted_requests_and_records_each(server: str) -> None:
    load = Load(server, max_requests=40, duration=60, concurrency=4).start()
    load.join()
    result = load.result
    assert len(result.outcomes) == 40
    assert sorted(Store.received) == sorted(o.message for o in result.outcomes)
    assert len(result.failed) == 8  # every 5th answer is a 503
    assert {o.status for o in result.failed} == {503}
    assert all(o.uuid is not None for o in result.acknowledged)
    summary = result.summary()
    assert (summary["sent"], summary["acknowledged"], summary["failed"]) == (40, 32, 8)
    assert summary["failures"] == {"503": 8}


def test_stops_at_the_time_limit(server: str) -> None:
    # 10 requests per second for 0.5 s: about 5 of the 1000 allowed.
    load = Load(server, max_requests=1000, duration=0.5, concurrency=2, rate=10).start()
    load.join()
    assert 1 <= len(load.result.outcomes) <= 6


def test_connection_errors_count_as_failed() -> None:
    load = Load("http://127.0.0.1:9/", max_requests=3, duration=10, concurrency=1).start()
    load.join()
    assert [o.status for o in load.result.outcomes] == [None, None, None]
    assert len(load.result.failed) == 3


def outcome(index: int, started: float, finished: float) -> Outcome:
    return Outcome(
        index=index,
        message=f"m{index}",
        started=started,
        latency=finished - started,
        status=201,
        uuid=f"u{index}",
        error=None,
    )


def test_order_violations_only_for_requests_that_did_not_overlap() -> None:
    result = LoadResult(
        [outcome(0, 0.0, 1.0), outcome(1, 0.5, 1.5), outcome(2, 2.0, 3.0)],
    )
    # 0 and 1 overlapped: either order is fine. 2 was sent after both were acknowledged.
    assert result.order_violations(["u1", "u0", "u2"]) == []
    assert result.order_violations(["u0", "u2", "u1"]) == [("u1", "u2")]


def test_latency_window() -> None:
    result = LoadResult([outcome(0, 0.0, 0.1), outcome(1, 5.0, 9.0), outcome(2, 20.0, 20.2)])
    assert result.max_latency((4.0, 6.0)) == pytest.approx(4.0)
    assert result.max_latency((19.0, 21.0)) == pytest.approx(0.2)
