"""Where a logging instance keeps messages: the Hazelcast map, behind a small protocol
(so the HTTP layer can be tested with an in-memory store)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hazelcast.asyncio import HazelcastClient, Map
from hazelcast.core import HazelcastJsonValue
from hazelcast.lifecycle import LifecycleState

from hazelog.config import LoggingConfig

log = logging.getLogger("hazelog.logging")

# Seconds. An operation keeps being retried (member loss, migration) this long before it
# fails; storing is idempotent, so a late success after the facade gave up is harmless.
INVOCATION_TIMEOUT = 30.0


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

    async def all(self) -> list[StoredMessage]:
        """Every stored message, in no particular order."""

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
    }


def _encode(message: StoredMessage) -> HazelcastJsonValue:
    return HazelcastJsonValue(
        json.dumps({"msg": message.msg, "accepted_at": message.accepted_at}, ensure_ascii=False)
    )


def _decode(uuid: str, value: Any) -> StoredMessage | None:
    try:
        data = value.loads() if isinstance(value, HazelcastJsonValue) else json.loads(value)
        return StoredMessage(uuid=uuid, msg=str(data["msg"]), accepted_at=int(data["accepted_at"]))
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable map entry %s: %s", uuid, exc)
        return None


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
        previous = await self._map.put_if_absent(message.uuid, _encode(message))
        if previous is None:
            return None
        # Something unreadable under this UUID still means "taken", never "stored now".
        return _decode(message.uuid, previous) or StoredMessage(message.uuid, "", 0)

    async def all(self) -> list[StoredMessage]:
        entries = await self._map.entry_set()
        return [m for key, value in entries if (m := _decode(str(key), value)) is not None]

    async def close(self) -> None:
        await self._client.shutdown()


async def open_hazelcast_store(config: LoggingConfig) -> MessageStore:
    return await HazelcastStore.open(config)
