"""Prometheus on the deployed Vagrant hosts (issue 11): every target of the inventory up, the
stored messages counted right, and a stopped logging instance seen down with its alert firing.

On the session's deployed lab (tests/deploy/conftest.py). Prometheus's
HTTP API is asked from the controller, at the monitoring host's address on port 9090 (the
firewall lets the controller in). Tests run in file order; each leaves the cluster whole.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.deploy.lab import (
    RECOVERY_TIMEOUT,
    Instance,
    Lab,
    http,
    stored_messages,
    wait_until,
    whole_and_safe,
)
from tests.deploy.render import repo_inventory

pytestmark = pytest.mark.deploy

PROMETHEUS_PORT = 9090
JMX_EXPORTER_OFFSET = 2000
# Bound: a few 5 s scrapes plus an alert's `for:`.
SCRAPE_TIMEOUT = 120.0
POSTED = 20


def prometheus_url() -> str:
    monitoring = repo_inventory()["all"]["children"]["monitoring"]["hosts"]
    address = next(iter(monitoring.values()))["ansible_host"]
    return f"http://{address}:{PROMETHEUS_PORT}"


def expected_targets() -> dict[str, int]:
    """Targets per scrape job, counted from the inventory: each facade and messages host, each
    logging port twice (the instance and its member's JMX exporter), every host's node
    exporter."""
    groups = repo_inventory()["all"]["children"]
    instances = sum(len(h["logging_ports"]) for h in groups["logging"]["hosts"].values())
    hosts = {name for group in groups.values() for name in group["hosts"]}
    return {
        "facade": len(groups["facade"]["hosts"]),
        "messages": len(groups["messages"]["hosts"]),
        "logging": instances,
        "hazelcast": instances,
        "node": len(hosts),
    }


def api(path: str, **params: str) -> Any:
    """The `data` of a Prometheus API answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    status, _, body = http("GET", f"{prometheus_url()}/api/v1/{path}{query}", timeout=10)
    assert status == 200, (path, status, body[:300])
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]


def query(expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api("query", query=expr)["result"]
    return result


def scalar(expr: str) -> float | None:
    """The single value of `expr`, None when it has no series (yet)."""
    result = query(expr)
    return float(result[0]["value"][1]) if result else None


def active_targets() -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = api("targets", state="active")["activeTargets"]
    return targets


def firing(alertname: str, **labels: str) -> bool:
    return any(
        alert["labels"].get("alertname") == alertname
        and alert["state"] == "firing"
        and all(alert["labels"].get(k) == v for k, v in labels.items())
        for alert in api("alerts")["alerts"]
    )


def all_up() -> bool:
    targets = active_targets()
    per_job: dict[str, int] = {}
    for target in targets:
        per_job[target["labels"]["job"]] = per_job.get(target["labels"]["job"], 0) + 1
    return per_job == expected_targets() and all(t["health"] == "up" for t in targets)


def stopped_instance(lab: Lab) -> Instance:
    """logging@20002 on logging3 in the default inventory: the last instance listed."""
    return lab.instances[-1]


def test_prometheus_is_ready_with_the_rules_loaded(lab: Lab) -> None:
    status, _, _ = http("GET", f"{prometheus_url()}/-/ready")
    assert status == 200
    rules = {rule["name"] for group in api("rules")["groups"] for rule in group["rules"]}
    assert {
        "HazelcastMemberDown",
        "LoggingInstanceDown",
        "HazelcastClusterNotSafe",
        "HazelcastClusterIncomplete",
        "LoggingInstanceNotReady",
        "LogFull",
    } <= rules


def test_every_inventory_target_is_up(lab: Lab) -> None:
    wait_until(all_up, SCRAPE_TIMEOUT, f"every target up: {expected_targets()}")
    members = len(lab.instances)
    assert scalar("min(hazelcast_cluster_size)") == members
    assert scalar("min(hazelcast_cluster_safe)") == 1
    assert scalar("count(jvm_memory_used_bytes{job='hazelcast', area='heap'})") == members
    assert scalar("count(node_load1)") == expected_targets()["node"]


def test_messages_stored_are_counted(lab: Lab) -> None:
    before = len(stored_messages(lab))
    for number in range(POSTED):
        text = f"monitoring {uuid.uuid4()} {number}"
        status, _, body = http(
            "POST", lab.facade_url, text.encode(), headers={"Content-Type": "text/plain"}
        )
        assert status == 201, (status, body[:300])
    stored = len(stored_messages(lab))
    assert stored == before + POSTED
    # The members' own count (every entry owned by exactly one member) and the logging
    # instances' view of the map, as Prometheus scraped them.
    owned = "sum(hazelcast_map_owned_entries{map='messages'})"
    wait_until(lambda: scalar(owned) == stored, SCRAPE_TIMEOUT, f"{owned} == {stored}")
    seen = "min(hazelog_map_size{job='logging'})"
    wait_until(lambda: scalar(seen) == stored, SCRAPE_TIMEOUT, f"{seen} == {stored}")
    received = "sum(hazelog_messages_stored_total{job='logging', result='created'})"
    created = scalar(received)
    assert created is not None
    assert created >= POSTED


def test_a_stopped_instance_goes_down_and_its_alert_fires(lab: Lab) -> None:
    instance = stopped_instance(lab)
    port = str(instance.port)
    lab.ssh(instance.host, f"systemctl stop logging@{instance.port}.service")
    try:
        # Both its targets: the logging instance and its member's JMX exporter (PartOf=).
        down = f"up{{logging_port='{port}'}}"
        wait_until(
            lambda: (
                sorted((r["metric"]["job"], r["value"][1]) for r in query(down))
                == [("hazelcast", "0"), ("logging", "0")]
            ),
            SCRAPE_TIMEOUT,
            f"{down} is 0 for the instance and its member",
        )
        # The other instances and members stay up.
        others = f"up{{job=~'logging|hazelcast', logging_port!='{port}'}} == 0"
        assert query(others) == []
        wait_until(
            lambda: firing("LoggingInstanceDown", logging_port=port),
            SCRAPE_TIMEOUT,
            f"LoggingInstanceDown firing for logging@{port}",
        )
        wait_until(
            lambda: firing("HazelcastMemberDown", logging_port=port),
            SCRAPE_TIMEOUT,
            f"HazelcastMemberDown firing for the member of logging@{port}",
        )
    finally:
        lab.ssh(instance.host, f"systemctl start logging@{instance.port}.service")
        wait_until(lambda: whole_and_safe(lab), RECOVERY_TIMEOUT, "cluster whole and safe again")
    wait_until(all_up, SCRAPE_TIMEOUT, "every target up again")
    wait_until(
        lambda: not firing("LoggingInstanceDown", logging_port=port),
        SCRAPE_TIMEOUT,
        f"LoggingInstanceDown resolved for logging@{port}",
    )


def test_metrics_ports_answer_the_monitoring_host_only(lab: Lab) -> None:
    """The firewall: the monitoring host reaches every exporter; another host reaches none."""
    groups = repo_inventory()["all"]["children"]
    monitor = next(iter(groups["monitoring"]["hosts"]))
    exporters = [(i.address, i.port + JMX_EXPORTER_OFFSET) for i in lab.instances] + [
        (address, 9100) for name, address in lab.addresses.items() if name != monitor
    ]
    from_monitor = lab.probe_tcp(monitor, exporters)
    assert all(from_monitor.values()), from_monitor
    from_facade = lab.probe_tcp(
        lab.facade_host,
        [target for target in exporters if target[0] != lab.addresses[lab.facade_host]],
    )
    assert not any(from_facade.values()), from_facade


def test_exporters_and_prometheus_listen_on_the_lab_address_only(lab: Lab) -> None:
    monitor = next(iter(repo_inventory()["all"]["children"]["monitoring"]["hosts"]))
    expected: dict[str, list[int]] = {host: [9100] for host in lab.addresses}
    expected[monitor].append(PROMETHEUS_PORT)
    for instance in lab.instances:
        expected[instance.host].append(instance.port + JMX_EXPORTER_OFFSET)
    for host, ports in expected.items():
        listening = [line.split() for line in lab.ssh(host, "ss -Htln").stdout.splitlines()]
        for port in ports:
            local = [
                fields[3]
                for fields in listening
                if len(fields) > 3 and fields[3].rsplit(":", 1)[-1] == str(port)
            ]
            assert local, f"nothing listens on {host}:{port}"
            # Java shows an IPv4 bind as [::ffff:ADDRESS]:PORT.
            assert all(lab.addresses[host] in address for address in local), (host, port, local)
