"""Paged reads of the log in accept order, at a cost that does not grow with the log.

The map has a sorted index on `accepted_at` (member template), so a query for a range of
accept times costs about the number of messages in the range, not the size of the map. A
page after a cursor asks for the range just after it, sized from the density of messages
seen so far (wider, eight times, over a gap), until it has the page or passes "now"; then
one open-ended range catches any message stamped in the future. The very start of the log
is found once (a min aggregation over the map) and remembered; later first pages check only
that nothing older has come in since.

Order: (accepted_at, uuid), as for the whole log. A walk (each page after the previous
page's cursor) sees every message stored before it began exactly once, in order; a message
stored during the walk with an accept time the walk has passed already is not seen by it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from hazelog.logging_service.store import (
    _PREFIX,
    _UUID_FIELD,
    MAX_ACCEPTED_AT,
    _ours,
    message_json,
    parse_stored,
)
from hazelog.web.paging import Cursor

# Nanoseconds a facade's clock may run ahead of ours: past now + this, one open range.
CLOCK_SKEW = 60 * 10**9
INITIAL_NS_PER_MESSAGE = 10**6
GAP_GROWTH = 8


class RangeStore(Protocol):
    async def range_json(self, low: int, high: int) -> list[str]:
        """The messages with low <= accepted_at <= high, as JSON texts, in no order."""

    async def first_accepted_at(self) -> int | None:
        """The smallest accepted_at in the map (a scan); None when the map is empty."""


# (accepted_at, uuid, the message's JSON text): the log's order, then what a page sends.
Entry = tuple[int, str, str]
_UUID_LENGTH = 36


def _entry(text: str) -> Entry | None:
    """The entry of a stored text; our own layout is sliced, not parsed (a page of the whole
    log is mostly this)."""
    comma = text.find(",", len(_PREFIX))
    start = comma + len(_UUID_FIELD)
    if _ours(text, comma) and text.startswith('"', start + _UUID_LENGTH):
        return int(text[len(_PREFIX) : comma]), text[start : start + _UUID_LENGTH], text
    message = parse_stored(text)
    if message is None:
        return None
    return message.accepted_at, message.uuid, message_json(message)


@dataclass(frozen=True)
class Page:
    texts: list[str]  # message_json texts, in order
    next: Cursor | None  # after the last message when the page is full


class Pager:
    def __init__(self, store: RangeStore) -> None:
        self._store = store
        self._start: int | None = None  # the log's first accept time, once known
        self._ns_per_message = INITIAL_NS_PER_MESSAGE

    async def _log_start(self) -> int | None:
        if self._start is None:
            self._start = await self._store.first_accepted_at()
            return self._start
        # Something stamped before the known start (rare) moves the start back.
        older = [e for e in map(_entry, await self._store.range_json(0, self._start - 1)) if e]
        if older:
            self._start = min(older)[0]
        return self._start

    async def page(self, after: Cursor | None, limit: int) -> Page:
        if after is None:
            start = await self._log_start()
            if start is None:
                return Page([], None)
            low, floor = start, (-1, "")
        else:
            low, floor = after.accepted_at, (after.accepted_at, after.uuid)
        horizon = time.time_ns() + CLOCK_SKEW
        found: dict[str, Entry] = {}
        width = max(1, int(limit * self._ns_per_message * 1.25))
        while len(found) < limit:
            # Past now, one open range catches the rest (stamped in the future).
            high = MAX_ACCEPTED_AT if low > horizon else min(low + width - 1, MAX_ACCEPTED_AT)
            window = [e for e in map(_entry, await self._store.range_json(low, high)) if e]
            for entry in window:
                if entry[:2] > floor:
                    found[entry[1]] = entry
            if high >= MAX_ACCEPTED_AT:
                break
            if window:
                # The density where the messages are (a burst at the start of a wide window
                # is a burst, not the window's average).
                span = max(window)[0] - low + 1
                self._ns_per_message = max(1, span // len(window))
                width = max(1, int((limit - len(found)) * self._ns_per_message * 1.25))
            else:
                width *= GAP_GROWTH
            low = high + 1
        ordered = sorted(found.values())[:limit]
        last = ordered[-1] if len(ordered) == limit else None
        return Page([text for _, _, text in ordered], Cursor(last[0], last[1]) if last else None)
