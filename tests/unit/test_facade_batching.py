"""Group commit of the facade's POSTs: the Batcher alone (plain coroutines), then the facade
against fake logging instances that do and do not know POST /batch."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from hazelog.config import FacadeConfig
from hazelog.facade.app import create_app
from hazelog.facade.batching import Batcher, BatcherClosed
from hazelog.facade.failover import BackendFailure, NoInstanceAvailable
from tests.unit.servers import fetch_json, listening_socket, serve_app, wait_until


@dataclass
class Recorder:
    """A send() that holds every batch until the test releases it."""

    batches: list[list[str]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    failure: Exception | None = None

    async def send(self, payloads: list[str], seconds: float) -> Sequence[str]:
        self.batches.append(list(payloads))
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return [f"stored {p}" for p in payloads]


def batcher(recorder: Recorder, **limits: int) -> Batcher[str, str]:
    settings = {"max_in_flight": 1, "max_batch": 100, "max_size": 1000}
    settings.update(limits)
    return Batcher(recorder.send, size=len, **settings)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_message_goes_out_at_once_and_alone() -> None:
    recorder = Recorder()
    recorder.gate.set()
    assert await batcher(recorder).submit("a", 5.0) == "stored a"
    assert recorder.batches == [["a"]]


async def test_messages_arriving_while_a_batch_is_out_travel_together_next() -> None:
    recorder = Recorder()
    b = batcher(recorder)
    first = asyncio.create_task(b.submit("a", 5.0))
    await settle()
    rest = [asyncio.create_task(b.submit(p, 5.0)) for p in "bcd"]
    await settle()
    assert recorder.batches == [["a"]]  # b, c, d wait: one batch in flight at most
    recorder.gate.set()
    assert await first == "stored a"
    assert await asyncio.gather(*rest) == ["stored b", "stored c", "stored d"]
    assert recorder.batches == [["a"], ["b", "c", "d"]]


async def test_batches_respect_count_and_size_but_a_big_payload_still_goes_alone() -> None:
    recorder = Recorder()
    b = batcher(recorder, max_batch=2, max_size=10)
    blocker = asyncio.create_task(b.submit("x", 5.0))
    await settle()
    payloads = ["a", "b", "c", "dddddddd", "e", "f" * 20]
    tasks = [asyncio.create_task(b.submit(p, 5.0)) for p in payloads]
    await settle()
    recorder.gate.set()
    await asyncio.gather(blocker, *tasks)
    assert recorder.batches == [["x"], ["a", "b"], ["c", "dddddddd"], ["e"], ["f" * 20]]


async def test_several_batches_fly_at_once_up_to_the_limit() -> None:
    recorder = Recorder()
    b = batcher(recorder, max_in_flight=2)
    tasks = [asyncio.create_task(b.submit(p, 5.0)) for p in "abcd"]
    await settle()
    assert recorder.batches == [["a"], ["b"]]
    recorder.gate.set()
    await asyncio.gather(*tasks)
    assert recorder.batches[2:] == [["c", "d"]]


async def test_a_failed_batch_fails_each_of_its_messages_and_the_next_batch_still_goes() -> None:
    recorder = Recorder(failure=NoInstanceAvailable("all down", []))
    b = batcher(recorder)
    first = asyncio.create_task(b.submit("a", 5.0))
    await settle()
    second = asyncio.create_task(b.submit("b", 5.0))
    await settle()
    recorder.gate.set()
    for task in (first, second):
        with pytest.raises(NoInstanceAvailable):
            await task
    assert recorder.batches == [["a"], ["b"]]


async def test_the_batch_gets_the_time_its_oldest_message_has_left() -> None:
    seen: list[float] = []

    async def send(payloads: list[str], seconds: float) -> list[str]:
        seen.append(seconds)
        return payloads

    b: Batcher[str, str] = Batcher(send, max_in_flight=1, max_batch=10, max_size=100)
    await b.submit("a", 3.0)
    assert 0 < seen[0] <= 3.0


async def test_a_client_that_went_away_is_not_sent() -> None:
    recorder = Recorder()
    b = batcher(recorder)
    blocker = asyncio.create_task(b.submit("x", 5.0))
    await settle()
    gone = asyncio.create_task(b.submit("gone", 5.0))
    kept = asyncio.create_task(b.submit("kept", 5.0))
    await settle()
    gone.cancel()
    await settle()
    recorder.gate.set()
    await asyncio.gather(blocker, kept)
    assert recorder.batches == [["x"], ["kept"]]


async def test_close_cancels_what_waits_and_refuses_more() -> None:
    recorder = Recorder()
    b = batcher(recorder)
    flying = asyncio.create_task(b.submit("a", 5.0))
    await settle()
    waiting = asyncio.create_task(b.submit("b", 5.0))
    await settle()
    await b.close()
    for task in (flying, waiting):
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(BatcherClosed):
        await b.submit("c", 5.0)


# --- the facade against fake logging instances -------------------------------------------


@dataclass
class FakeLogging:
    """A logging instance that answers after `release` is set; `batch` False plays an older
    version without POST /batch (404)."""

    batch: bool = True
    singles: list[dict[str, Any]] = field(default_factory=list)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    reject: set[str] = field(default_factory=set)  # msgs answered 400
    url: str = ""

    def result(self, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if message["msg"] in self.reject:
            return 400, {"error": "empty_message", "detail": "rejected by the fake"}
        return 201, {"uuid": message["uuid"], "stored": True}

    async def single(self, request: web.Request) -> web.StreamResponse:
        message = await request.json()
        self.singles.append(message)
        await self.release.wait()
        status, body = self.result(message)
        return web.json_response(body, status=status)

    async def many(self, request: web.Request) -> web.StreamResponse:
        if not self.batch:
            return web.json_response({"error": "not_found", "detail": "no"}, status=404)
        messages = (await request.json())["messages"]
        self.batches.append(messages)
        await self.release.wait()
        results = []
        for message in messages:
            status, body = self.result(message)
            results.append({"status": status, **body})
        return web.json_response({"results": results})


@contextlib.asynccontextmanager
async def fake_logging(fake: FakeLogging) -> AsyncIterator[FakeLogging]:
    app = web.Application()
    app.router.add_post("/", fake.single)
    app.router.add_post("/batch", fake.many)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    sock = listening_socket()
    await web.SockSite(runner, sock).start()
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    try:
        yield fake
    finally:
        await runner.cleanup()
        sock.close()


@contextlib.asynccontextmanager
async def facade_for(fake: FakeLogging) -> AsyncIterator[tuple[str, Batcher[Any, Any]]]:
    config = FacadeConfig.model_validate(
        {
            "port": 1,
            "logging_urls": [fake.url],
            "messages_url": fake.url,
            "request_timeout": 2.0,
            "deadline": 5.0,
        }
    )
    app = create_app(config, rng=random.Random(0))
    async with serve_app(app) as url:
        yield url, app.ctx.batcher


async def post_concurrently(
    facade: tuple[str, Batcher[Any, Any]], fake: FakeLogging, texts: list[str]
) -> list[Any]:
    """POST all texts at once; the instance answers only when the facade holds all but the
    first two (one instance: two batches in flight at most, each of one message)."""
    url, batcher = facade
    posts = [
        asyncio.create_task(fetch_json("POST", url + "/", data=text.encode())) for text in texts
    ]

    async def all_but_two_wait() -> bool:
        return batcher.waiting == len(texts) - 2

    await wait_until(all_but_two_wait)
    fake.release.set()
    return list(await asyncio.gather(*posts))


async def test_concurrent_posts_reach_the_instance_in_batches_each_with_its_answer() -> None:
    texts = [f"m{i}" for i in range(8)]
    async with fake_logging(FakeLogging(reject={"m5"})) as fake, facade_for(fake) as facade:
        answers = await post_concurrently(facade, fake, texts)
    sent = fake.singles + [m for batch in fake.batches for m in batch]
    assert sorted(m["msg"] for m in sent) == sorted(texts)
    assert fake.batches, "no batch was formed"
    assert [len(batch) for batch in fake.batches] == [len(texts) - 2]
    by_msg = {m["msg"]: m for m in sent}
    for text, (status, body) in zip(texts, answers, strict=True):
        if text == "m5":
            assert (status, body["error"]) == (400, "empty_message")
        else:
            assert status == 201
            assert body["uuid"] == by_msg[text]["uuid"]
            assert str(uuid.UUID(body["uuid"])) == body["uuid"]
    assert len({m["uuid"] for m in sent}) == len(texts)


async def test_an_instance_without_batch_gets_the_messages_one_by_one() -> None:
    texts = [f"m{i}" for i in range(6)]
    async with fake_logging(FakeLogging(batch=False)) as fake, facade_for(fake) as facade:
        answers = await post_concurrently(facade, fake, texts)
    assert [status for status, _ in answers] == [201] * len(texts)
    assert sorted(m["msg"] for m in fake.singles) == sorted(texts)
    assert fake.batches == []


async def test_batch_answers_that_do_not_match_are_a_backend_failure() -> None:
    from hazelog.facade.backends import Rejection, Stored, _batch_result

    payload = {"uuid": "u1", "msg": "m", "accepted_at": 1}
    assert _batch_result(payload, {"status": 200, "uuid": "u1"}) == Stored(created=False)
    assert _batch_result(payload, {"status": 201, "uuid": "u1"}) == Stored(created=True)
    with pytest.raises(BackendFailure):
        _batch_result(payload, {"status": 201, "uuid": "u2"})
    with pytest.raises(BackendFailure):
        _batch_result(payload, {"status": 503, "uuid": "u1"})
    with pytest.raises(BackendFailure):
        _batch_result(payload, "garbage")
    rejection = _batch_result(payload, {"status": 409, "error": "uuid_conflict", "detail": "d"})
    assert isinstance(rejection, Rejection)
    assert (rejection.status, rejection.body) == (409, {"error": "uuid_conflict", "detail": "d"})
