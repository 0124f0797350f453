"""A logging instance: stores messages in the Hazelcast map, idempotent by UUID, and logs
each one it receives (journal fields UUID and PORT under systemd)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuidlib
from json import dumps
from types import SimpleNamespace
from typing import Any

from hazelcast.errors import HazelcastError
from sanic import Blueprint, Request, Sanic
from sanic.config import Config
from sanic.response import HTTPResponse, json, raw

from hazelog.config import LoggingConfig
from hazelog.logging_service.cluster import cluster_safe
from hazelog.logging_service.metrics import LoggingMetrics
from hazelog.logging_service.pages import Page, Pager
from hazelog.logging_service.store import (
    MAX_ACCEPTED_AT,
    MessageStore,
    StoredMessage,
    StoreOpener,
    open_hazelcast_store,
)
from hazelog.web.app import ServiceApp, ServiceContext, build_app
from hazelog.web.body import read_json_object, require_message
from hazelog.web.errors import ApiError, error_body
from hazelog.web.paging import Cursor, next_link, page_query

log = logging.getLogger("hazelog.logging")

FIELDS = {"uuid", "msg", "accepted_at"}
RECONNECT_PAUSE = 2.0  # seconds between attempts when opening the client fails outright
MAX_BATCH = 256  # messages per POST /batch
STREAM_PAGE = 5000  # messages per page while streaming the whole log
MAP_SIZE_TIMEOUT = 2.0  # seconds a scrape waits for the map size


def parse_message(data: dict[str, Any]) -> StoredMessage:
    """Validate a POST body; everything is checked before anything is stored."""
    unknown = set(data) - FIELDS
    if unknown:
        raise ApiError(400, "invalid_shape", f"unknown fields: {', '.join(sorted(unknown))}")
    raw_uuid = data.get("uuid")
    if not isinstance(raw_uuid, str):
        raise ApiError(400, "invalid_uuid", "uuid must be a UUID string")
    try:
        canonical = str(uuidlib.UUID(raw_uuid))
    except ValueError as exc:
        raise ApiError(400, "invalid_uuid", f"uuid is not a UUID: {raw_uuid!r}") from exc
    msg = require_message(data.get("msg"))
    accepted_at = data.get("accepted_at")
    if accepted_at is None:
        accepted_at = time.time_ns()
    elif (
        isinstance(accepted_at, bool)
        or not isinstance(accepted_at, int)
        or not 0 <= accepted_at <= MAX_ACCEPTED_AT
    ):
        raise ApiError(400, "invalid_shape", "accepted_at must be an integer (ns since epoch)")
    return StoredMessage(uuid=canonical, msg=msg, accepted_at=accepted_at)


def parse_batch(data: dict[str, Any]) -> list[Any]:
    """The message list of a POST /batch body {"messages": [...]}; the items are checked
    one by one later, so one bad message does not sink the others."""
    items = data.get("messages")
    if set(data) != {"messages"} or not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_shape", 'body must be {"messages": [message, ...]}')
    if len(items) > MAX_BATCH:
        raise ApiError(400, "batch_too_large", f"at most {MAX_BATCH} messages per batch")
    return items


def outcome(message: StoredMessage, previous: StoredMessage | None) -> tuple[int, dict[str, Any]]:
    """Status and body for one stored message: 201 new, 200 repeat, 409 same UUID other text."""
    if previous is None:
        return 201, {"uuid": message.uuid, "stored": True}
    if previous.msg != message.msg:
        return 409, {
            "uuid": message.uuid,
            **error_body("uuid_conflict", f"{message.uuid} is stored with another msg"),
        }
    return 200, {"uuid": message.uuid, "stored": False}


# The members' MapStore refuses a put beyond their memory budget with this exception.
LOG_FULL_MARKER = "LogFullException"


def store_failure(message: StoredMessage, exc: BaseException) -> ApiError:
    """507 log_full when the members refused for room (a retry elsewhere cannot help), else a
    503 store_unavailable for a write the store did not confirm (the cluster or its database is
    away; the facade tries another instance). An error that is not the cluster's (a client bug,
    say) is still the store's, not the request's: it is logged with its traceback, and the
    client sees the same JSON 503."""
    if LOG_FULL_MARKER in str(exc):
        return ApiError(507, "log_full", f"the log is full: {reason(exc)}")
    if isinstance(exc, HazelcastError | OSError):
        log.warning("could not store %s: %s", message.uuid, reason(exc))
    else:
        log.error("could not store %s", message.uuid, exc_info=exc)
    return ApiError(503, "store_unavailable", f"could not store: {reason(exc)}")


def reason(exc: BaseException) -> str:
    """An error's first line: a member's exception text goes on with its Java stack trace."""
    return str(exc).strip().split("\n", 1)[0].strip() or type(exc).__name__


class LoggingContext(ServiceContext):
    """A logging instance's state: its store once the client is connected."""

    config: LoggingConfig

    def __init__(self, config: LoggingConfig, open_store: StoreOpener) -> None:
        super().__init__(config)
        self.config = config
        self.open_store = open_store
        self.store: MessageStore | None = None
        self.pager: Pager | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.stats = LoggingMetrics(self.metrics)
        self.metrics.before_scrape.append(self.refresh_map_size)

    async def refresh_map_size(self) -> int:
        """The map's size now (-1 when the store cannot say), also set on its gauge."""
        size = -1
        if self.store is not None and self.store.problem() is None:
            try:
                with self.stats.operation("size"):
                    size = await asyncio.wait_for(self.store.size(), MAP_SIZE_TIMEOUT)
            except Exception as exc:  # a scrape still answers, with -1
                log.warning("could not read the map size: %s", exc)
        self.stats.map_size.set(size)
        return size

    def store_problem(self) -> str | None:
        if self.store is None:
            return "not connected to the hazelcast cluster yet"
        return self.store.problem()

    def usable_store(self) -> MessageStore:
        """The store, or a 503 that says why there is none to use."""
        problem = self.store_problem()
        if self.store is None or problem is not None:
            raise ApiError(503, "not_ready", problem or "store unavailable")
        return self.store

    def usable_pager(self) -> Pager:
        store = self.usable_store()
        if self.pager is None:
            self.pager = Pager(store)
        return self.pager


LoggingApp = ServiceApp[LoggingContext]
LoggingRequest = Request[Sanic[Config, LoggingContext], SimpleNamespace]

routes = Blueprint("logging")


async def connect(app: LoggingApp) -> None:
    # In the background, so /health answers and /ready says why while the cluster is away.
    ctx = app.ctx
    while True:
        try:
            ctx.store = await ctx.open_store(ctx.config)
        except Exception as exc:
            log.warning("cannot open the hazelcast client (%s); retrying", exc)
            await asyncio.sleep(RECONNECT_PAUSE)
            continue
        log.info("connected to cluster %r via %s", ctx.config.cluster_name, ctx.config.members)
        ctx.readiness.mark_resources_ready()
        return


async def open_resources(app: LoggingApp) -> None:
    app.ctx.connecting = asyncio.create_task(connect(app))


async def close_resources(app: LoggingApp) -> None:
    task = app.ctx.connecting
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    store = app.ctx.store
    if store is not None:
        app.ctx.store = None
        await store.close()


async def store_and_log(
    ctx: LoggingContext, store: MessageStore, message: StoredMessage
) -> StoredMessage | None:
    with ctx.stats.operation("put_if_absent"):
        previous = await store.put_if_absent(message)
    ctx.stats.received.inc()
    ctx.stats.received_count += 1
    if previous is None:
        ctx.stats.stored.labels("created").inc()
    else:
        ctx.stats.stored.labels("repeat" if previous.msg == message.msg else "conflict").inc()
    log.info(
        "received %s: %s",
        message.uuid,
        message.msg,
        extra={"UUID": message.uuid, "PORT": ctx.config.port, "STORED": int(previous is None)},
    )
    return previous


@routes.post("/")
async def receive(request: LoggingRequest) -> HTTPResponse:
    ctx = request.app.ctx
    message = parse_message(read_json_object(request, ctx.config.max_body_bytes))
    store = ctx.usable_store()
    try:
        previous = await store_and_log(ctx, store, message)
    except ApiError:
        raise  # the store's own answer (its status and code) goes out as it is
    except Exception as exc:
        raise store_failure(message, exc) from exc
    status, body = outcome(message, previous)
    if status >= 400:
        raise ApiError(status, body["error"], body["detail"])
    return json(body, status=status)


@routes.post("/batch")
async def receive_batch(request: LoggingRequest) -> HTTPResponse:
    """Several messages in one request (the facade sends them so under load): each is
    checked and stored on its own and has its own result, in the order sent."""
    ctx = request.app.ctx
    items = parse_batch(read_json_object(request, ctx.config.max_body_bytes))
    results: list[dict[str, Any]] = [{} for _ in items]
    valid: list[tuple[int, StoredMessage]] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ApiError(400, "invalid_shape", "each message must be a JSON object")
            valid.append((index, parse_message(item)))
        except ApiError as exc:
            uuid = item.get("uuid") if isinstance(item, dict) else None
            results[index] = {
                "uuid": uuid if isinstance(uuid, str) else None,
                "status": exc.status_code,
                **error_body(exc.error, str(exc)),
            }
    ctx.stats.batch_size.observe(len(items))
    store = ctx.usable_store()
    # All at once: the client sends the writes together and the members answer together.
    stored = await asyncio.gather(
        *(store_and_log(ctx, store, message) for _, message in valid), return_exceptions=True
    )
    for (index, message), previous in zip(valid, stored, strict=True):
        if isinstance(previous, asyncio.CancelledError | ApiError):
            raise previous
        if isinstance(previous, BaseException):
            failure = store_failure(message, previous)
            if failure.status_code == 507:
                # This message has no room; the others of the batch have their results.
                results[index] = {
                    "uuid": message.uuid,
                    "status": 507,
                    **error_body(failure.error, str(failure)),
                }
                continue
            # Retrying the whole batch is safe: a message stored now comes back as 200.
            raise failure
        status, body = outcome(message, previous)
        results[index] = {"status": status, **body}
    return json({"results": results})


def read_failure(exc: BaseException) -> ApiError:
    log.warning("could not read messages: %s", reason(exc))
    return ApiError(503, "store_unavailable", f"could not read: {reason(exc)}")


async def read_page(ctx: LoggingContext, after: Cursor | None, limit: int) -> Page:
    pager = ctx.usable_pager()
    try:
        with ctx.stats.operation("page"):
            return await pager.page(after, limit)
    except (HazelcastError, OSError) as exc:
        raise read_failure(exc) from exc


@routes.get("/")
async def list_messages(request: LoggingRequest) -> HTTPResponse | None:
    """The whole log, streamed (one message per line, so the facade can stream it on), or
    with `limit`/`after` one page of it: see pages.py."""
    ctx = request.app.ctx
    query = page_query(request)
    if query is not None:
        after, limit = query
        page = await read_page(ctx, after, limit)
        next_cursor = str(page.next) if page.next is not None else None
        body = '{"messages":[' + ",".join(page.texts) + '],"next":' + dumps(next_cursor) + "}"
        headers = {"Link": next_link(request, page.next, limit)} if page.next else None
        return raw(body.encode("utf-8"), content_type="application/json", headers=headers)
    # The first page before the answer starts: a store that is away still gets a clean 503.
    page = await read_page(ctx, None, STREAM_PAGE)
    response = await request.respond(content_type="application/json")
    await response.send('{"messages":[\n')
    separator = ""
    while True:
        if page.texts:
            await response.send(separator + ",\n".join(page.texts))
            separator = ",\n"
        if page.next is None:
            break
        # A failure now cannot change the status any more: the client sees a cut answer.
        page = await read_page(ctx, page.next, STREAM_PAGE)
    await response.send(("\n" if separator else "") + "]}", end_stream=True)
    return None


@routes.get("/status")
async def status(request: LoggingRequest) -> HTTPResponse:
    """This instance as the facade's status page shows it: ready or why not, the messages it
    received, and the cluster as its client sees it."""
    ctx = request.app.ctx
    problem = ctx.readiness.problem()
    members: list[str] = []
    map_size: int | None = None
    safe: bool | None = None
    store = ctx.store
    if store is not None and store.problem() is None:
        members = store.members()
        size = await ctx.refresh_map_size()
        map_size = size if size >= 0 else None
        safe = await cluster_safe(members or list(ctx.config.members))
    return json(
        {
            "ready": problem is None,
            "problem": problem,
            "messages_received": ctx.stats.received_count,
            "members": members,
            "cluster_safe": safe,
            "map_size": map_size,
        }
    )


def create_app(config: LoggingConfig, open_store: StoreOpener = open_hazelcast_store) -> LoggingApp:
    app = build_app("hazelog-logging", LoggingContext(config, open_store))
    app.ctx.readiness.check = app.ctx.store_problem
    app.blueprint(routes)
    app.before_server_start(open_resources)
    app.after_server_stop(close_resources)
    return app
