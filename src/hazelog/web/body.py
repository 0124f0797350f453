"""Reading request bodies strictly: size limit, UTF-8, JSON object."""

from __future__ import annotations

import json
from typing import Any

from sanic import Request
from sanic.exceptions import PayloadTooLarge

from hazelog.web.errors import ApiError


def read_text(request: Request[Any, Any], max_bytes: int) -> str:
    """The body as text. Sanic already answers 413 past REQUEST_MAX_SIZE on a real socket;
    checking again here covers transports that do not (ASGI)."""
    body = request.body or b""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_utf8", f"body is not valid UTF-8: {exc.reason}") from exc


async def receive_body(request: Request[Any, Any], max_bytes: int) -> None:
    """Read the body of a request to a streaming route (stream=True), which Sanic leaves
    unread and unlimited: with the same limit as any other route (413 past it)."""
    stream = request.stream
    if stream is not None and stream.request_max_size > max_bytes:
        stream.request_max_size = max_bytes
    await request.receive_body()  # type: ignore[no-untyped-call]  # Sanic leaves it untyped


def read_json_object(request: Request[Any, Any], max_bytes: int) -> dict[str, Any]:
    text = read_text(request, max_bytes)
    try:
        value = json.loads(text)
    except RecursionError as exc:
        # The C parser recurses once per nesting level: a body of "[[[[..." runs out of stack
        # well within any size limit.
        raise ApiError(400, "too_deeply_nested", "body nests JSON too deeply") from exc
    except ValueError as exc:
        # JSONDecodeError, and also a number with more digits than int() converts (4300).
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_shape", "body must be a JSON object")
    return value


def is_json(request: Request[Any, Any]) -> bool:
    media = (request.content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def require_message(value: object, field: str = "msg") -> str:
    """A message is a non-blank string that can be stored and logged as UTF-8."""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_shape", f"{field} must be a string")
    if not value.strip():
        raise ApiError(400, "empty_message", f"{field} must not be empty")
    try:
        # JSON escapes can smuggle lone surrogates that no store or journal accepts.
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, "invalid_utf8", f"{field} is not valid Unicode text") from exc
    return value
