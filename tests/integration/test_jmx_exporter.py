"""The Prometheus JMX exporter agent in real members (hazelog_tools' jmx-exporter.yaml, the file
the hazelcast role pushes): every metric the alert rules use is there, with the cluster's
true figures.

Three members of a topology on free ports, each with the agent on its logging port + 2000
(the services are not started: only the members matter here).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hazelcast.asyncio import HazelcastClient, Map
from hazelcast.core import HazelcastJsonValue
from prometheus_client.parser import text_string_to_metric_families

from hazelog.logging_service.store import StoredMessage, encode_value
from hazelog_tools.local.processes import Running, stop
from hazelog_tools.local.runner import hazelog_command, start_all
from hazelog_tools.local.topology import Kind, Ports, build_topology
from hazelog_tools.member import member_health
from tests.conftest import require
from tests.integration.support import HOST, JAR, START_TIMEOUT, free_port_offset, http

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXPORTER_JAR = JAR.parent / "jmx_prometheus_javaagent-1.0.1.jar"
RULES = REPO / "roles/prometheus/templates/hazelog-rules.yml.j2"
MAP = "messages"
PARTITIONS = 271  # Hazelcast's default partition count
PUTS = 150
GETS = 40
# Hazelcast samples its metrics every 5 s (hazelcast.metrics.collection.frequency): a bound.
SAMPLE_TIMEOUT = 40.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Members:
    def __init__(self, ports: Ports, running: list[Running]) -> None:
        self.ports = ports
        self.running = running

    @property
    def addresses(self) -> list[str]:
        return [f"{HOST}:{port}" for port in self.ports.members]

    def scrape(self, exporter_port: int) -> Samples:
        """name and labels -> value, from one exporter's /metrics."""
        status, body = http("GET", f"http://{HOST}:{exporter_port}/metrics")
        assert status == 200, body[:300]
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    def scrape_all(self) -> list[Samples]:
        return [self.scrape(port) for port in self.ports.jmx_exporters]


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Members]:
    java = shutil.which("java")
    require(java is not None, "java is not installed (make test installs a JRE)")
    require(JAR.is_file(), f"{JAR} is missing (make artifacts fetches it)")
    require(EXPORTER_JAR.is_file(), f"{EXPORTER_JAR} is missing (make artifacts fetches it)")
    assert java is not None
    ports = Ports().shifted(free_port_offset())
    specs = build_topology(
        ports,
        base_dir=tmp_path_factory.mktemp("jmx-exporter"),
        jar=JAR,
        hazelog=hazelog_command(),
        java=java,
        host=HOST,
        jmx_exporter_jar=EXPORTER_JAR,
    )
    started: list[Running] = []
    try:
        start_all(
            [spec for spec in specs if spec.kind is Kind.MEMBER],
            START_TIMEOUT,
            on_started=started.append,
        )
        yield Members(ports, started)
    finally:
        stop(started)


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} not exported; have {sorted({n for n, _ in samples})}"
    return samples[key]


def total(members: Members, name: str, **labels: str) -> float:
    return sum(value(samples, name, **labels) for samples in members.scrape_all())


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll until `predicate` holds; a bound that only turns "never" into a failure. A metric
    missing so far (the member has not sampled it yet) counts as "not yet"."""
    deadline = time.monotonic() + SAMPLE_TIMEOUT
    while True:
        try:
            if predicate():
                return
            problem = f"not within {SAMPLE_TIMEOUT:.0f} s: {what}"
        except AssertionError as exc:
            problem = f"not within {SAMPLE_TIMEOUT:.0f} s: {what}: {exc}"
        assert time.monotonic() < deadline, problem
        time.sleep(1)


def rule_metric_names() -> set[str]:
    """The member metrics (hazelcast_*, jvm_*) in the expressions of the Prometheus alert
    rules (the role's template, its Ansible variables and blocks blanked out)."""
    text = re.sub(r"\[\[.*?\]\]", "0", RULES.read_text(encoding="utf-8"))
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("{%"))
    groups = yaml.safe_load(text)["groups"]
    expressions = " ".join(str(rule["expr"]) for group in groups for rule in group["rules"])
    return set(re.findall(r"\b(?:hazelcast|jvm)_[a-z_]+\b", expressions))


async def put_messages(addresses: list[str], count: int, gets: int) -> None:
    """Store `count` messages as a logging instance does (put_if_absent of the JSON value),
    then read `gets` of them back."""
    client = await HazelcastClient.create_and_start(
        cluster_name="hazelog", cluster_members=addresses
    )
    try:
        messages: Map[str, HazelcastJsonValue] = await client.get_map(MAP)
        keys = [str(uuid.uuid4()) for _ in range(count)]
        for number, key in enumerate(keys):
            stored = StoredMessage(uuid=key, msg=f"jmx probe {number}", accepted_at=number + 1)
            assert await messages.put_if_absent(key, encode_value(stored)) is None
        for key in keys[:gets]:
            assert await messages.get(key) is not None
    finally:
        await client.shutdown()


def test_exporters_serve_the_jvm_and_cluster_figures(members: Members) -> None:
    for port in members.ports.jmx_exporters:
        samples = members.scrape(port)
        assert value(samples, "jmx_scrape_error") == 0
        heap_max = value(samples, "jvm_memory_max_bytes", area="heap")
        assert 0 < value(samples, "jvm_memory_used_bytes", area="heap") <= heap_max
    wait_for(
        lambda: all(
            value(s, "hazelcast_cluster_size") == len(members.ports.members)
            and value(s, "hazelcast_cluster_safe") == 1
            for s in members.scrape_all()
        ),
        "every member reports the whole cluster, safe",
    )
    for samples in members.scrape_all():
        assert value(samples, "hazelcast_member_safe") == 1
        assert value(samples, "hazelcast_partition_migration_queue_size") == 0
        assert value(samples, "hazelcast_partition_migrations_completed_total") >= 0
    # The same figures as the member's own health endpoint.
    for port in members.ports.members:
        health = member_health(HOST, port)
        assert health is not None
        assert health["clusterSize"] == len(members.ports.members)


def test_map_figures_count_what_the_client_stored(members: Members) -> None:
    asyncio.run(put_messages(members.addresses, PUTS, GETS))
    backups = min(2, len(members.ports.members) - 1)
    # Every stored message once as an owned entry somewhere, and twice as a backup.
    wait_for(
        lambda: (
            total(members, "hazelcast_map_owned_entries", map=MAP) == PUTS
            and total(members, "hazelcast_map_backup_entries", map=MAP) == backups * PUTS
            and total(members, "hazelcast_map_gets_total", map=MAP) == GETS
            # Once data is stored, each of the 271 partitions is owned by exactly one member.
            and total(members, "hazelcast_partition_local_count") == PARTITIONS
        ),
        f"{PUTS} owned entries, {backups * PUTS} backups, {GETS} gets and {PARTITIONS}"
        " partitions summed over members",
    )
    # put_if_absent counts as a put on the owner.
    assert total(members, "hazelcast_map_puts_total", map=MAP) == PUTS
    assert total(members, "hazelcast_map_owned_entry_memory_bytes", map=MAP) > 0
    assert total(members, "hazelcast_map_backup_entry_memory_bytes", map=MAP) > 0
    for name in (
        "hazelcast_map_put_latency_seconds_total",
        "hazelcast_map_get_latency_seconds_total",
    ):
        assert total(members, name, map=MAP) >= 0
    for samples in members.scrape_all():
        longest = value(samples, "hazelcast_map_put_latency_max_seconds", map=MAP)
        # Milliseconds scaled to seconds: a put on this machine takes well under a minute.
        assert 0 <= longest < 60


def test_every_member_metric_in_the_alert_rules_is_exported(members: Members) -> None:
    used = rule_metric_names()
    assert used, f"no hazelcast_* or jvm_* metric found in {RULES}"

    def exported() -> set[str]:
        return {name for samples in members.scrape_all() for name, _ in samples}

    if not used <= exported():
        # Run alone, this test finds the map not created yet: its figures come with a message.
        asyncio.run(put_messages(members.addresses, 1, 0))
    wait_for(lambda: used <= exported(), f"every metric of the rules exported: {sorted(used)}")


def test_exporters_listen_on_the_member_host_only(members: Members) -> None:
    require(shutil.which("ss") is not None, "ss (iproute2) is not installed")
    for port in members.ports.jmx_exporters:
        listing = subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"], check=True, capture_output=True, text=True
        ).stdout
        addresses = [line.split()[3] for line in listing.splitlines() if line.strip()]
        assert addresses, f"nothing listens on {port}"
        assert all(HOST in address for address in addresses), addresses
