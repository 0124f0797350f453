"""The facade: takes messages from clients, stores each through one logging instance (with
failover), and reads them back together with the messages service's text."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import uuid as uuidlib
from json import dumps
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import Gauge
from sanic import Blueprint, Request, Sanic
from sanic.config import Config
from sanic.response import HTTPResponse, html, json, text

from hazelog.config import FacadeConfig
from hazelog.facade.backends import (
    MessageStream,
    Rejection,
    Stored,
    get_page,
    get_text,
    instance_ready,
    instance_status,
    open_messages,
    post_batch,
    post_message,
)
from hazelog.facade.batching import Batcher, BatcherError, BatcherFull
from hazelog.facade.failover import (
    BackendFailure,
    Clock,
    InstancePool,
    NoInstanceAvailable,
    call_with_failover,
    call_with_hedging,
)
from hazelog.facade.idempotency import HEADER, idempotency_key, message_uuid
from hazelog.facade.metrics import FacadeMetrics
from hazelog.facade.openapi import OPENAPI_PATH, openapi_document
from hazelog.facade.plain_text import render_lines
from hazelog.facade.status import render_page, status_document
from hazelog.web.app import ServiceApp, ServiceContext, build_app
from hazelog.web.body import (
    is_json,
    read_json_object,
    read_text,
    receive_body,
    require_message,
)
from hazelog.web.errors import ApiError, error_body
from hazelog.web.paging import Cursor, next_link, page_query

log = logging.getLogger("hazelog.facade")

WARNING_HEADER = "X-Hazelog-Warning"

# Under load, POSTs travel to the logging instances in batches (see batching.py): at most
# BATCHES_PER_INSTANCE batches per instance at once (at least MIN_IN_FLIGHT in all), of at
# most MAX_BATCH messages and, counting each message at its worst-case JSON size,
# MAX_BATCH_BYTES (half a logging instance's default body limit); a bigger message goes
# alone. One per instance measured best (bench: more batching, less CPU per message).
BATCHES_PER_INSTANCE = 1
MIN_IN_FLIGHT = 2
MAX_BATCH = 64
MAX_BATCH_BYTES = 256 * 1024
# Seconds a client turned away for overload is told to wait (Retry-After), drawn at random
# so that the clients turned away by one burst do not all come back in the same instant.
RETRY_AFTER = (1, 3)
# Seconds between the facade's checks of every logging instance's /ready (for its own).
READY_POLL_INTERVAL = 1.0
# Characters per chunk of a streamed whole-log answer.
CHUNK_BYTES = 64 * 1024


def payload_size(payload: dict[str, Any]) -> int:
    # JSON escaping makes a character at most 6 bytes ("\u001f"); plus uuid and field names.
    return 6 * len(payload["msg"]) + 128


def message_from_request(request: Request[Any, Any], max_bytes: int) -> str:
    """The message text: a JSON {"msg": ...} body, or else the body itself as text (curl -d
    sends form-encoded, and that counts as text too)."""
    if is_json(request):
        data = read_json_object(request, max_bytes)
        unknown = set(data) - {"msg"}
        if unknown:
            raise ApiError(400, "invalid_shape", f"unknown fields: {', '.join(sorted(unknown))}")
        return require_message(data.get("msg"))
    body = read_text(request, max_bytes)
    # `echo msg | curl --data-binary @-` adds a newline that is no part of the message.
    return require_message(body.removesuffix("\n").removesuffix("\r"), field="message")


def unavailable(exc: NoInstanceAvailable) -> HTTPResponse:
    return json(
        {
            "error": "no_logging_instance",
            # The last failure says why (e.g. the instances' database is down).
            "detail": f"{exc.detail}; last: {exc.attempts[-1].error}"
            if exc.attempts
            else exc.detail,
            "attempts": [a.as_json() for a in exc.attempts],
        },
        status=503,
    )


def overload_bodies(reason: str) -> dict[int, bytes]:
    """The answer to a POST turned away because the facade is full, encoded once per
    Retry-After value: under overload most requests get it, so it should cost next to
    nothing (the facade holds exactly max_pending messages whenever it answers it)."""
    return {
        seconds: dumps(error_body("overloaded", f"{reason}; retry in {seconds} s")).encode()
        for seconds in range(RETRY_AFTER[0], RETRY_AFTER[1] + 1)
    }


def full(ctx: FacadeContext) -> HTTPResponse:
    seconds = ctx.retry_rng.randint(*RETRY_AFTER)
    return HTTPResponse(
        ctx.overload_bodies[seconds],
        status=503,
        headers={"Retry-After": str(seconds)},
        content_type="application/json",
    )


class FacadeContext(ServiceContext):
    """The facade's state: the logging instances (pool, readiness), the HTTP client session
    (open while the server runs) and the batcher that carries POSTs to the instances."""

    config: FacadeConfig

    def __init__(self, config: FacadeConfig, clock: Clock, rng: random.Random | None) -> None:
        super().__init__(config)
        self.config = config
        self.pool = InstancePool(
            [str(u) for u in config.logging_urls],
            config.cooldown,
            clock,
            rng,
            on_cooldown=self._cooled_down,
        )
        self.stats = FacadeMetrics(self.metrics, self.pool)
        self.retry_rng = rng or random.Random()
        self.messages_url = str(config.messages_url)
        self.openapi = openapi_document(config.max_body_bytes)
        self.ready_instances: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self.batcher: Batcher[dict[str, Any], Stored | Rejection] = Batcher(
            functools.partial(send, self),
            max_in_flight=max(MIN_IN_FLIGHT, BATCHES_PER_INSTANCE * len(self.pool.urls)),
            max_batch=MAX_BATCH,
            max_size=MAX_BATCH_BYTES,
            size=payload_size,
            max_pending=config.max_pending,
        )
        self.overload_bodies = overload_bodies(self.batcher.full_detail())
        Gauge(
            "hazelog_facade_pending_messages",
            "Messages the facade holds: batched or on their way to a logging instance",
            registry=self.metrics.registry,
        ).set_function(lambda: self.batcher.pending)

    def _cooled_down(self, url: str) -> None:
        self.stats.cooled_down(url)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the facade's HTTP session is open only while the server runs")
        return self._session

    def no_instance_ready(self) -> str | None:
        if self.ready_instances:
            return None
        return f"none of the {len(self.pool.urls)} logging instance(s) is ready"

    async def open_session(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.request_timeout),
            raise_for_status=False,
        )

    async def close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


FacadeApp = ServiceApp[FacadeContext]
FacadeRequest = Request[Sanic[Config, FacadeContext], SimpleNamespace]

routes = Blueprint("facade")


async def send(
    ctx: FacadeContext, payloads: list[dict[str, Any]], seconds: float
) -> list[Stored | Rejection]:
    """Store one batch through one logging instance, with failover for all of it."""
    ctx.stats.batch_size.observe(len(payloads))
    if len(payloads) == 1:
        [payload] = payloads

        async def store_one(url: str) -> Stored | Rejection:
            return await post_message(ctx.session, url, payload)

        return [await call_with_failover(ctx.pool, ctx.stats.counted(store_one), seconds)]

    async def store_batch(url: str) -> list[Stored | Rejection]:
        return await post_batch(ctx.session, url, payloads)

    return await call_with_failover(ctx.pool, ctx.stats.counted(store_batch), seconds)


async def watch_instances(ctx: FacadeContext) -> None:
    urls, timeout = ctx.pool.urls, ctx.config.request_timeout
    while True:
        ready = await asyncio.gather(*(instance_ready(ctx.session, url, timeout) for url in urls))
        ctx.ready_instances = {url for url, ok in zip(urls, ready, strict=True) if ok}
        await asyncio.sleep(READY_POLL_INTERVAL)


async def open_resources(app: FacadeApp) -> None:
    await app.ctx.open_session()
    app.ctx.readiness.mark_resources_ready()


async def start_watching(app: FacadeApp) -> None:
    # Cancelled with the other background tasks when the server stops.
    app.ctx.background.append(asyncio.create_task(watch_instances(app.ctx)))


async def close_resources(app: FacadeApp) -> None:
    # Requests have drained by now: whatever is still batched has no client waiting.
    await app.ctx.batcher.close()
    await app.ctx.close_session()


@routes.get(OPENAPI_PATH)
async def openapi(request: FacadeRequest) -> HTTPResponse:
    return json(request.app.ctx.openapi)


# stream=True: Sanic leaves the body unread until the handler asks for it, so that a POST
# turned away for overload is answered on its headers alone.
@routes.post("/", stream=True)
async def accept(request: FacadeRequest) -> HTTPResponse:
    ctx = request.app.ctx
    # Full: turned away before any work on the request (body, headers, UUID), so that under
    # overload a rejection takes as little of the one event loop as possible, and a client
    # sending a big or slow body (or waiting for 100 Continue) learns at once. Nothing is
    # stored, so whatever the request holds, the client may send it again later.
    if ctx.batcher.full:
        return full(ctx)
    await receive_body(request, ctx.config.max_body_bytes)
    # Validate first: a rejected request never reaches a logging instance.
    key = idempotency_key(request)
    msg = message_from_request(request, ctx.config.max_body_bytes)
    # One UUID and accept time per message, whichever instance ends up storing it; with
    # a key, the same UUID for every retry, so the instances store it once.
    uuid = message_uuid(key) if key is not None else str(uuidlib.uuid4())
    payload = {"uuid": uuid, "msg": msg, "accepted_at": time.time_ns()}
    try:
        result = await ctx.batcher.submit(payload, ctx.config.deadline)
    except NoInstanceAvailable as exc:
        log.warning("no logging instance stored %s: %s", uuid, exc.detail)
        return unavailable(exc)
    except BatcherFull:
        return full(ctx)
    except BatcherError as exc:
        log.warning("message %s not stored: %s", uuid, exc)
        return json(error_body("unavailable", f"message not stored: {exc}"), status=503)
    if isinstance(result, Rejection):
        if key is not None and result.body.get("error") == "uuid_conflict":
            detail = f"{HEADER} was used before with another message"
            return json(error_body("idempotency_key_reused", detail), status=422)
        return json(result.body, status=result.status)
    # Without a key, a 200 can only be this request's own earlier attempt (failover).
    status = 201 if key is None or result.created else 200
    ctx.stats.accepted.labels(str(status)).inc()
    return json({"uuid": uuid}, status=status)


async def fetch_text(ctx: FacadeContext) -> tuple[str | None, str | None]:
    try:
        return await get_text(ctx.session, ctx.messages_url), None
    except (BackendFailure, TimeoutError) as exc:
        reason = str(exc) or "timed out"
        log.warning("messages service %s unreachable: %s", ctx.messages_url, reason)
        return None, f"messages service unreachable ({ctx.messages_url}): {reason}"


class Chunks:
    """Pieces of a streamed answer, sent in chunks of about CHUNK_BYTES (not one write per
    message, nor the whole log at once)."""

    def __init__(self, response: HTTPResponse) -> None:
        self._response = response
        self._pieces: list[str] = []
        self._size = 0

    async def add(self, piece: str) -> None:
        self._pieces.append(piece)
        self._size += len(piece)
        if self._size >= CHUNK_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._pieces:
            await self._response.send("".join(self._pieces))
            self._pieces, self._size = [], 0


@routes.get("/")
async def read_all(request: FacadeRequest) -> HTTPResponse | None:
    """The whole log then the messages text, streamed; with `limit`/`after`, one page."""
    ctx = request.app.ctx
    config = ctx.config
    query = page_query(request)
    wants_json = request.accept.match("text/plain", "application/json") == "application/json"
    if query is not None:
        return await read_page(request, *query, wants_json)
    text_task = asyncio.create_task(fetch_text(ctx))

    async def start(url: str) -> MessageStream:
        return await open_messages(ctx.session, url, config.deadline)

    try:
        stream = await call_with_hedging(
            ctx.pool, ctx.stats.counted(start), config.deadline, config.request_timeout
        )
    except NoInstanceAvailable as exc:
        text_task.cancel()
        return unavailable(exc)
    except BaseException:
        text_task.cancel()  # never leave the concurrent fetch running behind us
        raise
    service_text, warning = await text_task
    warnings = [warning] if warning else []
    # From here on the answer streams: a logging instance lost midway cuts it (the client
    # sees an incomplete answer, never a wrong one), as there is no status left to change.
    try:
        await stream_log(request, stream, service_text, warnings, wants_json)
    except BackendFailure as exc:
        log.warning("the whole-log stream from a logging instance broke: %s", exc)
        # Nothing sent yet (the first chunk is still buffered): a clean 503; else a cut.
        raise ApiError(503, "unavailable", f"the log could not be read whole: {exc}") from exc
    return None


async def stream_log(
    request: FacadeRequest,
    stream: MessageStream,
    service_text: str | None,
    warnings: list[str],
    wants_json: bool,
) -> None:
    if wants_json:
        response = await request.respond(content_type="application/json")
        chunks = Chunks(response)
        await chunks.add('{"messages":[')
        separator = ""
        async for message in stream.messages():
            await chunks.add(separator + dumps(message, ensure_ascii=False))
            separator = ","
        tail = {"text": service_text, "warnings": warnings}
        await chunks.add("]," + dumps(tail, ensure_ascii=False)[1:])
        await chunks.flush()
        await response.eof()
        return
    headers = {WARNING_HEADER: "; ".join(warnings)} if warnings else None
    response = await request.respond(content_type="text/plain; charset=utf-8", headers=headers)
    chunks = Chunks(response)
    async for message in stream.messages():
        await chunks.add(render_lines([message["msg"]]))
    await chunks.add(render_lines([service_text] if service_text is not None else []))
    await chunks.flush()
    await response.eof()


async def read_page(
    request: FacadeRequest, after: Cursor | None, limit: int, wants_json: bool
) -> HTTPResponse:
    ctx = request.app.ctx
    cursor = str(after) if after is not None else None

    async def fetch(url: str) -> tuple[list[dict[str, Any]], Cursor | None]:
        messages, next_text = await get_page(ctx.session, url, cursor, limit)
        try:
            return messages, Cursor.parse(next_text) if next_text is not None else None
        except ApiError as exc:
            raise BackendFailure("the page's next cursor is not a cursor") from exc

    try:
        messages, next_cursor = await call_with_failover(
            ctx.pool, ctx.stats.counted(fetch), ctx.config.deadline
        )
    except NoInstanceAvailable as exc:
        return unavailable(exc)
    headers = {}
    if next_cursor is not None:
        headers["Link"] = next_link(request, next_cursor, limit)
    if wants_json:
        next_text = str(next_cursor) if next_cursor is not None else None
        return json({"messages": messages, "next": next_text}, headers=headers)
    return text(render_lines(m["msg"] for m in messages), headers=headers)


@routes.get("/status")
async def status(request: FacadeRequest) -> HTTPResponse:
    ctx = request.app.ctx
    urls, timeout = ctx.pool.urls, ctx.config.request_timeout
    answers = await asyncio.gather(*(instance_status(ctx.session, url, timeout) for url in urls))
    document = status_document(ctx.pool, ctx.stats, list(answers))
    # A browser asks for text/html first; curl (*/*) and scripts get JSON.
    if request.accept.match("application/json", "text/html") == "text/html":
        return html(render_page(document))
    return json(document)


def create_app(
    config: FacadeConfig, clock: Clock = time.monotonic, rng: random.Random | None = None
) -> FacadeApp:
    app = build_app("hazelog-facade", FacadeContext(config, clock, rng))
    app.ctx.readiness.check = app.ctx.no_instance_ready
    app.blueprint(routes)
    app.before_server_start(open_resources)
    app.after_server_start(start_watching)
    app.after_server_stop(close_resources)
    return app
