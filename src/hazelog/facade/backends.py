"""The facade's HTTP calls to logging instances and the messages service (aiohttp).

Each call turns a transport problem, a timeout or a 5xx into BackendFailure, the signal for
failover; a 4xx on POST is the client's fault and comes back as a Rejection instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from hazelog.facade.failover import BackendFailure


@dataclass(frozen=True)
class Stored:
    """The instance has the message: `created` now (201), or it had it already (200)."""

    created: bool


@dataclass(frozen=True)
class Rejection:
    """A logging instance refused the message itself (4xx): pass it on, do not fail over."""

    status: int
    body: dict[str, Any]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _transport_failure(exc: aiohttp.ClientError) -> BackendFailure:
    # A failed connect means nothing listens; anything later (a reset, a timeout) came
    # from an instance that is there.
    unreachable = isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
        exc, TimeoutError
    )
    return BackendFailure(_describe(exc), unreachable=unreachable)


# The log is full: no instance has room, so it is an answer for the client, not a failover.
INSUFFICIENT_STORAGE = 507


async def _error_body(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = json.loads(await response.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body
    return {"error": "rejected", "detail": f"HTTP {response.status}"}


async def _server_failure(response: aiohttp.ClientResponse) -> BackendFailure:
    """A 5xx, with the instance's own reason when it gave one (e.g. the database is down),
    so that the facade's 503 can name the cause."""
    try:
        body = json.loads(await response.read())
    except (UnicodeDecodeError, json.JSONDecodeError, aiohttp.ClientError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return BackendFailure(f"HTTP {response.status} {body['error']}: {body.get('detail', '')}")
    return BackendFailure(f"HTTP {response.status}")


async def _read_json(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendFailure(f"HTTP {response.status} with a non-JSON body") from exc


async def post_message(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any]
) -> Stored | Rejection:
    """Store `payload` on one logging instance."""
    # ensure_ascii=False keeps non-ASCII text at its UTF-8 size under the instance's limit.
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        async with session.post(
            url, data=data, headers={"Content-Type": "application/json"}
        ) as response:
            if response.status == INSUFFICIENT_STORAGE:
                return Rejection(response.status, await _error_body(response))
            if response.status >= 500:
                raise await _server_failure(response)
            body = await _read_json(response)
            if response.status in (200, 201):
                # Anything but our UUID back means we did not talk to a logging instance.
                if not isinstance(body, dict) or body.get("uuid") != payload["uuid"]:
                    raise BackendFailure(f"HTTP {response.status} without the message's uuid")
                return Stored(created=response.status == 201)
            if 400 <= response.status < 500:
                if not isinstance(body, dict) or "error" not in body:
                    body = {"error": "rejected", "detail": f"HTTP {response.status}"}
                return Rejection(response.status, body)
            raise BackendFailure(f"unexpected HTTP {response.status}")
    except aiohttp.ClientError as exc:
        raise _transport_failure(exc) from exc


def batch_url(url: str) -> str:
    return url.rstrip("/") + "/batch"


async def post_batch(
    session: aiohttp.ClientSession, url: str, payloads: Sequence[dict[str, Any]]
) -> list[Stored | Rejection]:
    """Store several messages with one request (POST /batch); one result per payload, as
    post_message would give it. An instance that does not know /batch (older version) or
    refuses the batch as a whole gets the messages one by one instead."""
    items = ",".join(json.dumps(payload, ensure_ascii=False) for payload in payloads)
    data = ('{"messages":[' + items + "]}").encode("utf-8")
    try:
        async with session.post(
            batch_url(url), data=data, headers={"Content-Type": "application/json"}
        ) as response:
            if response.status >= 500:
                raise await _server_failure(response)
            if response.status != 200:
                body = None
            else:
                body = await _read_json(response)
    except aiohttp.ClientError as exc:
        raise _transport_failure(exc) from exc
    if body is None:
        return list(await asyncio.gather(*(post_message(session, url, p) for p in payloads)))
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != len(payloads):
        raise BackendFailure("batch answer without one result per message")
    return [
        _batch_result(payload, result) for payload, result in zip(payloads, results, strict=True)
    ]


def _batch_result(payload: dict[str, Any], result: Any) -> Stored | Rejection:
    status = result.get("status") if isinstance(result, dict) else None
    if not isinstance(status, int) or isinstance(status, bool):
        raise BackendFailure("batch result without a status")
    if status in (200, 201):
        if result.get("uuid") != payload["uuid"]:
            raise BackendFailure(f"batch result {status} without the message's uuid")
        return Stored(created=status == 201)
    if 400 <= status < 500 or status == INSUFFICIENT_STORAGE:
        error, detail = result.get("error"), result.get("detail")
        if not isinstance(error, str) or not isinstance(detail, str):
            error, detail = "rejected", f"HTTP {status}"
        return Rejection(status, {"error": error, "detail": detail})
    raise BackendFailure(f"batch result with status {status}")


def _valid_message(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("uuid"), str)
        and isinstance(item.get("msg"), str)
        and isinstance(item.get("accepted_at"), int)
    )


async def get_text(session: aiohttp.ClientSession, url: str) -> str:
    """The messages service's text."""
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise BackendFailure(f"HTTP {response.status}")
            return await response.text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BackendFailure(f"HTTP {response.status} with a text that is not UTF-8") from exc
    except aiohttp.ClientError as exc:
        raise _transport_failure(exc) from exc


async def instance_ready(session: aiohttp.ClientSession, url: str, seconds: float) -> bool:
    """Whether a logging instance answers its /ready with 200 within `seconds`."""
    try:
        async with session.get(
            url.rstrip("/") + "/ready", timeout=aiohttp.ClientTimeout(total=seconds)
        ) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def instance_status(
    session: aiohttp.ClientSession, url: str, seconds: float
) -> dict[str, Any] | None:
    """A logging instance's GET /status, None when it does not answer it with JSON."""
    try:
        async with session.get(
            url.rstrip("/") + "/status", timeout=aiohttp.ClientTimeout(total=seconds)
        ) as response:
            body = json.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _checked_message(item: Any) -> dict[str, Any]:
    if not _valid_message(item):
        raise BackendFailure("response is not a message list")
    return {"uuid": item["uuid"], "msg": item["msg"], "accepted_at": item["accepted_at"]}


async def get_page(
    session: aiohttp.ClientSession, url: str, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the log from one logging instance: its messages and the next cursor."""
    params = {"limit": str(limit)}
    if after is not None:
        params["after"] = after
    try:
        async with session.get(
            url, params=params, headers={"Accept": "application/json"}
        ) as response:
            if response.status != 200:
                raise BackendFailure(f"HTTP {response.status}")
            body = await _read_json(response)
    except aiohttp.ClientError as exc:
        raise _transport_failure(exc) from exc
    messages = body.get("messages") if isinstance(body, dict) else None
    next_cursor = body.get("next") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not (next_cursor is None or isinstance(next_cursor, str)):
        raise BackendFailure("response is not a page")
    return [_checked_message(m) for m in messages], next_cursor


# The whole log as a logging instance streams it: this line, then one message per line (a
# comma after each but the last), then "]}". JSON escapes every line break inside a message.
STREAM_HEAD = b'{"messages":['
STREAM_TAIL = b"]}"


@dataclass
class MessageStream:
    """The whole log from one logging instance, read message by message (see `messages`)."""

    response: aiohttp.ClientResponse
    buffered: list[dict[str, Any]] | None  # an answer not in lines (an older instance)

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        try:
            if self.buffered is not None:
                for message in self.buffered:
                    yield message
                return
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise BackendFailure("the message stream was cut")
                line = raw.rstrip(b"\r\n")
                if line == STREAM_TAIL:
                    return
                if not line:
                    continue
                try:
                    item = json.loads(line.removesuffix(b","))
                except ValueError as exc:
                    raise BackendFailure("a streamed message is not JSON") from exc
                yield _checked_message(item)
        except aiohttp.ClientError as exc:
            raise _transport_failure(exc) from exc
        finally:
            self.response.close()


async def open_messages(
    session: aiohttp.ClientSession, url: str, read_timeout: float
) -> MessageStream:
    """Start reading the whole log from one logging instance: returns once the instance has
    answered 200 with its first line; `read_timeout` bounds each wait for data after that."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=read_timeout)
    response: aiohttp.ClientResponse | None = None
    try:
        response = await session.get(url, headers={"Accept": "application/json"}, timeout=timeout)
        if response.status != 200:
            raise BackendFailure(f"HTTP {response.status}")
        first = (await response.content.readline()).rstrip(b"\r\n")
        if first == STREAM_HEAD:
            return MessageStream(response, None)
        # A whole JSON answer: parse it before anything goes to the client.
        body = await _parse_json(response, first + await response.read())
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            raise BackendFailure("response is not a message list")
        return MessageStream(response, [_checked_message(m) for m in messages])
    except aiohttp.ClientError as exc:
        if response is not None:
            response.release()
        raise _transport_failure(exc) from exc
    except BaseException:
        if response is not None:
            response.release()
        raise


async def _parse_json(response: aiohttp.ClientResponse, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendFailure(f"HTTP {response.status} with a non-JSON body") from exc
