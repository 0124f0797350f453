"""The query of a paged read, `GET /?limit=N&after=CURSOR`, shared by the facade and the
logging instances: the cursor, the limit and its maximum, the `Link: rel="next"` header."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sanic import Request

from hazelog.web.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # messages per page at most (README)
_MAX_STAMP = 2**63 - 1


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page ends: the last message's (accepted_at, uuid), the log's order."""

    accepted_at: int
    uuid: str

    def __str__(self) -> str:
        return f"{self.accepted_at}.{self.uuid}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        stamp, _, raw_uuid = text.partition(".")
        problem = ApiError(400, "invalid_cursor", "after must be the `next` of a page")
        if not (stamp.isascii() and stamp.isdigit()) or int(stamp) > _MAX_STAMP:
            raise problem
        try:
            canonical = str(uuidlib.UUID(raw_uuid))
        except ValueError as exc:
            raise problem from exc
        if canonical != raw_uuid.lower():
            raise problem
        return cls(int(stamp), canonical)


def _single(request: Request[Any, Any], name: str) -> str | None:
    # Blank values count: `?after=` is a bad cursor, not "no cursor".
    values = request.get_args(keep_blank_values=True).getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, f"invalid_{name}", f"{name} may be given once")
    value: str = values[0]
    return value


def page_query(request: Request[Any, Any]) -> tuple[Cursor | None, int] | None:
    """(after, limit) of a paged read; None for the whole log (neither is given)."""
    raw_limit = _single(request, "limit")
    raw_after = _single(request, "after")
    if raw_limit is None and raw_after is None:
        return None
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not (
            1 <= int(raw_limit) <= MAX_LIMIT
        ):
            raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
    after = Cursor.parse(raw_after) if raw_after is not None else None
    return after, limit


def next_link(request: Request[Any, Any], cursor: Cursor, limit: int) -> str:
    """The `Link` header to the page after `cursor`, relative to the request's path."""
    return f'<{request.path}?{urlencode({"limit": limit, "after": str(cursor)})}>; rel="next"'
