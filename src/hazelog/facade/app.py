"""The facade: takes messages from clients, stores each through one logging instance (with
failover), and reads them back together with the messages service's text."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid as uuidlib
from typing import Any

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse, json, text

from hazelog.config import FacadeConfig
from hazelog.facade.backends import (
    Rejection,
    Stored,
    get_messages,
    get_text,
    instance_ready,
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
from hazelog.facade.openapi import OPENAPI_PATH, openapi_document
from hazelog.facade.plain_text import render_lines
from hazelog.web.app import App, build_app, readiness
from hazelog.web.body import is_json, read_json_object, read_text, require_message
from hazelog.web.errors import ApiError, error_body

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


def payload_size(payload: dict[str, Any]) -> int:
    # JSON escaping makes a character at most 6 bytes ("\u001f"); plus uuid and field names.
    return 6 * len(payload["msg"]) + 128


def message_from_request(request: Request, max_bytes: int) -> str:
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


def overloaded(exc: BatcherFull, seconds: int) -> HTTPResponse:
    return json(
        error_body("overloaded", f"{exc}; retry in {seconds} s"),
        status=503,
        headers={"Retry-After": str(seconds)},
    )


def create_app(
    config: FacadeConfig, clock: Clock = time.monotonic, rng: random.Random | None = None
) -> App:
    app = build_app("hazelog-facade", config)
    pool = InstancePool([str(u) for u in config.logging_urls], config.cooldown, clock, rng)
    retry_rng = rng or random.Random()
    messages_url = str(config.messages_url)
    app.ctx.pool = pool
    app.ctx.session = None
    app.ctx.ready_instances = set()

    def session() -> aiohttp.ClientSession:
        value: aiohttp.ClientSession = app.ctx.session
        return value

    @app.before_server_start
    async def open_resources(app: App) -> None:
        app.ctx.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.request_timeout),
            raise_for_status=False,
        )
        readiness(app).mark_resources_ready()

    def no_instance_ready() -> str | None:
        if app.ctx.ready_instances:
            return None
        return f"none of the {len(pool.urls)} logging instance(s) is ready"

    readiness(app).check = no_instance_ready

    async def watch_instances() -> None:
        while True:
            ready = await asyncio.gather(
                *(instance_ready(session(), url, config.request_timeout) for url in pool.urls)
            )
            app.ctx.ready_instances = {url for url, ok in zip(pool.urls, ready, strict=True) if ok}
            await asyncio.sleep(READY_POLL_INTERVAL)

    @app.after_server_start
    async def start_watching(app: App) -> None:
        # Cancelled with the other background tasks when the server stops.
        app.ctx.background.append(asyncio.create_task(watch_instances()))

    @app.after_server_stop
    async def close_resources(app: App) -> None:
        # Requests have drained by now: whatever is still batched has no client waiting.
        await batcher.close()
        if app.ctx.session is not None:
            await app.ctx.session.close()
            app.ctx.session = None

    document = openapi_document(config.max_body_bytes)

    @app.get(OPENAPI_PATH)
    async def openapi(request: Request) -> HTTPResponse:
        return json(document)

    async def send(payloads: list[dict[str, Any]], seconds: float) -> list[Stored | Rejection]:
        """Store one batch through one logging instance, with failover for all of it."""
        if len(payloads) == 1:
            [payload] = payloads

            async def store_one(url: str) -> Stored | Rejection:
                return await post_message(session(), url, payload)

            return [await call_with_failover(pool, store_one, seconds)]

        async def store_batch(url: str) -> list[Stored | Rejection]:
            return await post_batch(session(), url, payloads)

        return await call_with_failover(pool, store_batch, seconds)

    batcher: Batcher[dict[str, Any], Stored | Rejection] = Batcher(
        send,
        max_in_flight=max(MIN_IN_FLIGHT, BATCHES_PER_INSTANCE * len(pool.urls)),
        max_batch=MAX_BATCH,
        max_size=MAX_BATCH_BYTES,
        size=payload_size,
        max_pending=config.max_pending,
    )
    app.ctx.batcher = batcher

    @app.post("/")
    async def accept(request: Request) -> HTTPResponse:
        # Validate first: a rejected request never reaches a logging instance.
        key = idempotency_key(request)
        msg = message_from_request(request, config.max_body_bytes)
        # One UUID and accept time per message, whichever instance ends up storing it; with
        # a key, the same UUID for every retry, so the instances store it once.
        uuid = message_uuid(key) if key is not None else str(uuidlib.uuid4())
        payload = {"uuid": uuid, "msg": msg, "accepted_at": time.time_ns()}
        try:
            result = await batcher.submit(payload, config.deadline)
        except NoInstanceAvailable as exc:
            log.warning("no logging instance stored %s: %s", uuid, exc.detail)
            return unavailable(exc)
        except BatcherFull as exc:
            return overloaded(exc, retry_rng.randint(*RETRY_AFTER))
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
        return json({"uuid": uuid}, status=status)

    async def fetch_text() -> tuple[str | None, str | None]:
        try:
            return await get_text(session(), messages_url), None
        except (BackendFailure, TimeoutError) as exc:
            reason = str(exc) or "timed out"
            log.warning("messages service %s unreachable: %s", messages_url, reason)
            return None, f"messages service unreachable ({messages_url}): {reason}"

    @app.get("/")
    async def read_all(request: Request) -> HTTPResponse:
        text_task = asyncio.create_task(fetch_text())

        async def fetch(url: str) -> list[dict[str, Any]]:
            return await get_messages(session(), url, seconds=config.deadline)

        try:
            messages = await call_with_hedging(pool, fetch, config.deadline, config.request_timeout)
        except NoInstanceAvailable as exc:
            text_task.cancel()
            return unavailable(exc)
        except BaseException:
            text_task.cancel()  # never leave the concurrent fetch running behind us
            raise
        service_text, warning = await text_task
        warnings = [warning] if warning else []
        if request.accept.match("text/plain", "application/json") == "application/json":
            return json({"messages": messages, "text": service_text, "warnings": warnings})
        lines = [m["msg"] for m in messages]
        if service_text is not None:
            lines.append(service_text)
        headers = {WARNING_HEADER: "; ".join(warnings)} if warnings else None
        return text(render_lines(lines), headers=headers)

    return app
