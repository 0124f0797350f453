"""A Hazelcast member: its configuration (rendered from the template the Ansible role shares),
its command line, and its health endpoint."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_NAME = "hazelcast.yaml.j2"
DEFAULT_CLUSTER_NAME = "hazelog"
DEFAULT_MAP_NAME = "messages"
DEFAULT_BACKUP_COUNT = 2
# Seconds a SIGTERM'd member may spend handing its partitions over; kept well below the
# time a supervisor waits before SIGKILL (systemd's TimeoutStopSec, the local runner's bound).
DEFAULT_GRACEFUL_MAX_WAIT = 30
# A member listens on its logging instance's port + 1000.
MEMBER_PORT_OFFSET = 1000
# Hazelcast allows at most 6 backups per partition.
MAX_BACKUP_COUNT = 6

# What `java -jar hazelcast.jar` runs; named when the member needs a classpath of several jars.
MEMBER_MAIN_CLASS = "com.hazelcast.core.server.HazelcastMemberStarter"
MAPSTORE_JAR_NAME = "hazelog-mapstore.jar"


@dataclass(frozen=True)
class MapStoreDatabase:
    """The PostgreSQL database that keeps the map (through hazelog's MapStore)."""

    jdbc_url: str
    user: str
    # Never in a repr, should one land in a log or a test report.
    password: str = field(repr=False)
    table: str = "messages"
    # Bytes of entries one member may hold (0: unbounded); see log_capacity.
    max_entry_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.jdbc_url.startswith("jdbc:postgresql://"):
            raise ValueError(f"jdbc_url must be a jdbc:postgresql:// URL, not {self.jdbc_url!r}")
        if self.max_entry_bytes < 0:
            raise ValueError("max_entry_bytes must not be negative")


# Share of a member's heap its map entries may take: the rest is Hazelcast itself, a GET of
# the whole log (a member builds its part of the answer in memory), partition
# migration (a joining or leaving member briefly holds a partition twice), operations in
# flight and garbage not yet collected.
ENTRY_HEAP_SHARE = 0.3
# Bytes one message takes in a member's map besides its text: record, key, JSON framing
# (the MapStore's own estimate), for stating the capacity in messages.
ENTRY_OVERHEAD = 2 * (36 + 80) + 200


def member_entry_budget(heap_bytes: int) -> int:
    """max-entry-bytes for a member with this maximum heap (-Xmx)."""
    if heap_bytes <= 0:
        raise ValueError("heap_bytes must be positive")
    return int(heap_bytes * ENTRY_HEAP_SHARE)


def log_capacity(heap_bytes: int, members: int, backup_count: int, message_chars: int) -> int:
    """How many messages of `message_chars` characters the log holds: every member holds
    (1 + backup_count) / members of all entries, each within its member's budget."""
    if members < 1 or backup_count < 0:
        raise ValueError("members must be at least 1 and backup_count not negative")
    copies = min(1 + backup_count, members)
    per_message = 2 * message_chars + ENTRY_OVERHEAD
    return member_entry_budget(heap_bytes) * members // (copies * per_message)


# Access to JDK internals that Hazelcast asks for on Java 9+ (the member prints exactly this
# list when it is missing). Without them it still runs, only slower and with a warning.
JAVA_OPTIONS: tuple[str, ...] = (
    "--add-modules",
    "java.se",
    "--add-exports",
    "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.lang=ALL-UNNAMED",
    "--add-opens",
    "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens",
    "java.management/sun.management=ALL-UNNAMED",
    "--add-opens",
    "jdk.management/com.sun.management.internal=ALL-UNNAMED",
)

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("hazelog_tools", "templates"),
    undefined=jinja2.StrictUndefined,
    # As Ansible's template module renders it, so both give the same file.
    trim_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


def member_port_for(logging_port: int) -> int:
    return logging_port + MEMBER_PORT_OFFSET


def render_member_config(
    *,
    member_host: str,
    member_port: int,
    members: Sequence[str],
    cluster_name: str = DEFAULT_CLUSTER_NAME,
    map_name: str = DEFAULT_MAP_NAME,
    backup_count: int = DEFAULT_BACKUP_COUNT,
    graceful_max_wait: int = DEFAULT_GRACEFUL_MAX_WAIT,
    database: MapStoreDatabase | None = None,
) -> str:
    """The member's hazelcast.yaml. `members` are "host:port" of every member, itself included.

    With `database`, the map is kept in it (the member then needs `member_command`'s
    `classpath`); without, the map lives in memory alone."""
    if not 1 <= member_port <= 65535:
        raise ValueError(f"member_port {member_port} is not a TCP port")
    if not members:
        raise ValueError("members must name at least this member")
    if not 0 <= backup_count <= MAX_BACKUP_COUNT:
        raise ValueError(f"backup_count {backup_count} is not within 0..{MAX_BACKUP_COUNT}")
    if graceful_max_wait < 1:
        raise ValueError("graceful_max_wait must be at least 1 second")
    return _environment.get_template(TEMPLATE_NAME).render(
        cluster_name=cluster_name,
        member_host=member_host,
        member_port=member_port,
        members=list(members),
        map_name=map_name,
        backup_count=backup_count,
        graceful_max_wait=graceful_max_wait,
        **(
            {
                "mapstore_jdbc_url": database.jdbc_url,
                "mapstore_user": database.user,
                "mapstore_password": database.password,
                "mapstore_table": database.table,
                "mapstore_max_entry_bytes": database.max_entry_bytes,
            }
            if database is not None
            else {}
        ),
    )


def member_command(
    jar: Path,
    config_path: Path,
    *,
    java: str = "java",
    jvm_options: Sequence[str] = (),
    classpath: Sequence[Path] = (),
) -> list[str]:
    """argv that runs one member in the foreground; it shuts down gracefully on SIGTERM.

    `classpath`: further jars (the MapStore and the JDBC driver) next to the Hazelcast jar."""
    launch = (
        ["-cp", ":".join(str(path) for path in (jar, *classpath)), MEMBER_MAIN_CLASS]
        if classpath
        else ["-jar", str(jar)]
    )
    return [
        java,
        *JAVA_OPTIONS,
        *jvm_options,
        # A .yaml suffix makes Hazelcast parse the file as YAML.
        f"-Dhazelcast.config={config_path}",
        *launch,
    ]


def health_url(host: str, port: int, check: str = "ready") -> str:
    """URL of a health endpoint: "ready", "cluster-safe", "cluster-size", or "" for the JSON."""
    suffix = f"/{check}" if check else ""
    return f"http://{host}:{port}/hazelcast/health{suffix}"


def member_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the member answers 200 on /hazelcast/health/ready (it is running and joined)."""
    return http_ok(health_url(host, port, "ready"), timeout)


def member_health(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The member's health JSON (nodeState, clusterSafe, clusterSize, ...), None if unreachable."""
    try:
        with urllib.request.urlopen(health_url(host, port, ""), timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return body if isinstance(body, dict) else None


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET `url` answers 200; any error or other status is "not yet"."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        # HTTP errors (urllib raises them for non-2xx), refused or reset connections (a member
        # closes the socket of a request it does not serve), timeouts, garbled answers.
        return False
