"""Idempotency-Key (the IETF httpapi draft's header): a client that retries a POST, after a
timeout say, stores its message once.

The message's UUID is derived from the key (UUID version 5 over a fixed namespace), so every
facade computes the same UUID for the same key and a logging instance's put_if_absent
answers the retry with the message stored the first time. The key therefore lives in the
`messages` map itself, as its message's UUID, with the same backups as the message: it is
remembered exactly as long as the message is stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from sanic import Request

from hazelog.web.errors import ApiError

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
# Fixed for good: another namespace would make every key already used look new.
NAMESPACE = uuid.UUID("9b7c3c51-52d8-4f57-8d0e-5c7a2f0e4c11")


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "invalid_idempotency_key", f"{HEADER} {detail}")


def parse_key(value: str) -> str:
    """The key is the header's value, opaque: 1 to MAX_LENGTH printable ASCII characters
    (the draft's quoted form "..." is a key like any other, quotes included: a client sends
    the same value every time)."""
    if not value:
        raise _invalid("is empty")
    if len(value) > MAX_LENGTH:
        raise _invalid(f"is longer than {MAX_LENGTH} characters")
    if not all(" " <= char <= "~" for char in value):
        raise _invalid("may hold only printable ASCII characters")
    return value


def idempotency_key(request: Request[Any, Any]) -> str | None:
    values = request.headers.getall(HEADER, [])
    if not values:
        return None
    if len(values) > 1:
        raise _invalid("is given more than once")
    return parse_key(values[0].strip())


def message_uuid(key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, key))
