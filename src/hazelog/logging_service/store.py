"""Where a logging instance keeps messages: the Hazelcast map, behind a small protocol
(so the HTTP layer can be tested with an in-memory store)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hazelcast.aggregator import min_
from hazelcast.asyncio import HazelcastClient, Map
from hazelcast.config import IntType
from hazelcast.core import HazelcastJsonValue
from hazelcast.lifecycle import LifecycleState
from hazelcast.predicate import between

from hazelog.config import LoggingConfig

log = logging.getLogger("hazelog.logging")

# Seconds. An operation keeps being retried (member loss, migration) this long before it
# fails; storing is idempotent, so a late success after the facade gave up is harmless.
INVOCATION_TIMEOUT = 30.0
ACCEPTED_AT = "accepted_at"
MAX_ACCEPTED_AT = 2**63 - 1  # ns since the epoch; also what a Java long holds


@dataclass(frozen=True)
class StoredMessage:
    uuid: str
    msg: str
    accepted_at: int

    def as_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "msg": self.msg, "accepted_at": self.accepted_at}

    def sort_key(self) -> tuple[int, str]:
        # A map has no order: the facade's accept time (then the UUID, to break ties) is it.
        return (self.accepted_at, self.uuid)


class MessageStore(Protocol):
    def problem(self) -> str | None:
        """None while the store is usable, else why not (for /ready)."""

    async def put_if_absent(self, message: StoredMessage) -> StoredMessage | None:
        """Store `message` unless its UUID is present; return the message already stored."""

    async def all_json(self) -> list[str]:
        """Every stored message as JSON object text (see `message_json`), in no order."""

    async def size(self) -> int:
        """Entries in the map."""

    def members(self) -> list[str]:
        """The cluster members the client knows, as "host:port"."""

    async def range_json(self, low: int, high: int) -> list[str]:
        """The messages with low <= accepted_at <= high (see pages.py), in no order."""

    async def first_accepted_at(self) -> int | None:
        """The smallest accepted_at in the map; None when it is empty."""

    async def close(self) -> None: ...


StoreOpener = Callable[[LoggingConfig], Awaitable[MessageStore]]


def client_settings(config: LoggingConfig) -> dict[str, Any]:
    """Keyword arguments for HazelcastClient: keep retrying through member loss."""
    return {
        "cluster_name": config.cluster_name,
        "cluster_members": list(config.members),
        # Retry even non-idempotent operations on another member: our put_if_absent is
        # idempotent by UUID, so a redo never duplicates a message.
        "redo_operation": True,
        "invocation_timeout": INVOCATION_TIMEOUT,
        "invocation_retry_pause": 0.5,
        # Never give up on the cluster (-1): while all members are down the instance answers
        # 503 and keeps reconnecting, with a short backoff so it is back soon after them.
        "cluster_connect_timeout": -1,
        "retry_initial_backoff": 0.5,
        "retry_max_backoff": 4.0,
        "retry_multiplier": 1.5,
        "retry_jitter": 0.2,
        "connection_timeout": 5.0,
        # Accept times (ns since the epoch) in predicates need a Java long.
        "default_int_type": IntType.LONG,
    }


# A stored value is the very JSON object a GET answers with, accepted_at first: a GET of the
# whole log then sorts the texts by a key sliced out of each one and joins them, without
# parsing and re-serialising every message (that was most of a big GET's time).
_PREFIX = '{"accepted_at":'
_UUID_FIELD = ',"uuid":"'


def message_json(message: StoredMessage) -> str:
    """The message as compact JSON: {"accepted_at": int, "uuid": str, "msg": str}."""
    return (
        f'{_PREFIX}{int(message.accepted_at)},"uuid":{json.dumps(message.uuid)}'
        f',"msg":{json.dumps(message.msg, ensure_ascii=False)}}}'
    )


def encode_value(message: StoredMessage) -> HazelcastJsonValue:
    return HazelcastJsonValue(message_json(message))


def _decode(uuid: str, value: Any) -> StoredMessage | None:
    try:
        data = value.loads() if isinstance(value, HazelcastJsonValue) else json.loads(value)
        return StoredMessage(uuid=uuid, msg=str(data["msg"]), accepted_at=int(data["accepted_at"]))
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable map entry %s: %s", uuid, exc)
        return None


def _ours(text: str, comma: int) -> bool:
    """Whether `text` has the layout `message_json` writes (`comma` ends accepted_at).

    Only the layout is checked, not the whole text: only logging instances write this map,
    and they write it with `message_json`.
    """
    digits = text[len(_PREFIX) : comma]
    return (
        text.startswith(_PREFIX)
        and text.startswith(_UUID_FIELD, comma)
        and text.endswith("}")
        and digits.isascii()
        and digits.isdigit()
    )


def parse_stored(text: str) -> StoredMessage | None:
    """A value in another layout (written by something else): parse it once, fully; None,
    logged, when it is no message."""
    try:
        data = json.loads(text)
        return StoredMessage(
            uuid=str(data["uuid"]), msg=str(data["msg"]), accepted_at=int(data["accepted_at"])
        )
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable map entry %.80r: %s", text, exc)
        return None


def _reencode(text: str) -> str | None:
    message = parse_stored(text)
    return message_json(message) if message is not None else None


def sort_messages_json(texts: list[str]) -> list[str]:
    """The texts of `all_json`, ordered by (accepted_at, uuid); unreadable ones dropped.

    Among texts whose accepted_at has the same number of digits, plain string order is
    (accepted_at, uuid) order: so one sort of the strings (in C, no key objects), then a
    stable split by that number of digits, fewest first.
    """
    by_width: dict[int, list[str]] = {}
    start = len(_PREFIX)
    rewritten = False
    for text in sorted(texts):
        comma = text.find(",", start)
        if not _ours(text, comma):
            fixed = _reencode(text)
            if fixed is None:
                continue
            text, comma, rewritten = fixed, fixed.find(",", start), True
        bucket = by_width.get(comma)
        if bucket is None:
            by_width[comma] = bucket = []
        bucket.append(text)
    ordered: list[str] = []
    for width in sorted(by_width):
        bucket = by_width[width]
        if rewritten:  # a rewritten text went in out of order
            bucket.sort()
        ordered.extend(bucket)
    return ordered


class HazelcastStore:
    def __init__(self, client: Any, messages: Map[str, HazelcastJsonValue]) -> None:
        self._client = client
        self._map = messages
        # create_and_start returns once connected; the listener tracks the rest.
        self._connected = True
        client.lifecycle_service.add_listener(self._on_state)

    @classmethod
    async def open(cls, config: LoggingConfig) -> HazelcastStore:
        client = await HazelcastClient.create_and_start(**client_settings(config))
        messages: Map[str, HazelcastJsonValue] = await client.get_map(config.map_name)
        return cls(client, messages)

    def _on_state(self, state: str) -> None:
        if state == LifecycleState.CONNECTED:
            self._connected = True
        elif state in (LifecycleState.DISCONNECTED, LifecycleState.SHUTTING_DOWN):
            self._connected = False
        log.info("hazelcast client %s", state.lower())

    def problem(self) -> str | None:
        if not self._client.lifecycle_service.is_running():
            return "hazelcast client is not running"
        if not self._connected:
            return "not connected to the hazelcast cluster"
        return None

    async def put_if_absent(self, message: StoredMessage) -> StoredMessage | None:
        previous = await self._map.put_if_absent(message.uuid, encode_value(message))
        if previous is None:
            return None
        # Something unreadable under this UUID still means "taken", never "stored now".
        return _decode(message.uuid, previous) or StoredMessage(message.uuid, "", 0)

    async def all_json(self) -> list[str]:
        # values(), not entry_set(): the UUID is in the value, and the client decodes one
        # frame per entry instead of two.
        values = await self._map.values()
        return [v.to_string() if isinstance(v, HazelcastJsonValue) else str(v) for v in values]

    async def size(self) -> int:
        return await self._map.size()

    def members(self) -> list[str]:
        return [
            f"{m.address.host}:{m.address.port}" for m in self._client.cluster_service.get_members()
        ]

    async def range_json(self, low: int, high: int) -> list[str]:
        # Served by the map's sorted index on accepted_at (member template).
        values = await self._map.values(between(ACCEPTED_AT, low, high))
        return [v.to_string() if isinstance(v, HazelcastJsonValue) else str(v) for v in values]

    async def first_accepted_at(self) -> int | None:
        first: Any = await self._map.aggregate(min_(ACCEPTED_AT))
        return int(first) if first is not None else None

    async def close(self) -> None:
        await self._client.shutdown()


async def open_hazelcast_store(config: LoggingConfig) -> MessageStore:
    return await HazelcastStore.open(config)
