"""What a logging instance reports about the cluster on its /status: the members its client
knows and whether the cluster is safe (no partition without its backups, no migration
running), as the members' own health endpoint says."""

from __future__ import annotations

import json

import aiohttp

HEALTH_PATH = "/hazelcast/health"
# Seconds for one member's health answer: a status page must not hang on a dead member.
HEALTH_TIMEOUT = 1.0


async def cluster_safe(members: list[str]) -> bool | None:
    """The `clusterSafe` of the first member that answers its health endpoint (the cluster's
    view, so any member will do); None when none answers."""
    timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for member in members:
            try:
                async with session.get(f"http://{member}{HEALTH_PATH}") as response:
                    body = json.loads(await response.read())
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            safe = body.get("clusterSafe") if isinstance(body, dict) else None
            if isinstance(safe, bool):
                return safe
    return None
