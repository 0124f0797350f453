"""The member template and the topology builder, checked without starting anything (the
other modules here start them for real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from hazelog_tools.local.topology import Kind, Ports, build_topology
from hazelog_tools.member import (
    JAVA_OPTIONS,
    MEMBER_MAIN_CLASS,
    TEMPLATE_NAME,
    MapStoreDatabase,
    log_capacity,
    member_command,
    member_entry_budget,
    render_member_config,
)

MEMBERS = ["10.0.0.1:21000", "10.0.0.2:21001", "10.0.0.3:21002"]


def rendered(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "member_host": "10.0.0.2",
        "member_port": 21001,
        "members": MEMBERS,
        "cluster_name": "lab-cluster",
        "map_name": "messages",
        "backup_count": 2,
        "graceful_max_wait": 25,
    }
    values.update(overrides)
    document = yaml.safe_load(render_member_config(**values))
    config: dict[str, Any] = document["hazelcast"]
    return config


def test_member_config_carries_every_variable() -> None:
    config = rendered()
    network = config["network"]
    assert config["cluster-name"] == "lab-cluster"
    assert network["public-address"] == "10.0.0.2:21001"
    assert network["port"] == {"port": 21001, "auto-increment": False}
    assert network["interfaces"] == {"enabled": True, "interfaces": ["10.0.0.2"]}
    assert network["join"]["tcp-ip"]["member-list"] == MEMBERS
    assert config["map"]["messages"]["backup-count"] == 2
    assert config["properties"]["hazelcast.graceful.shutdown.max.wait"] == "25"


def test_member_config_joins_by_member_list_only() -> None:
    join = rendered()["network"]["join"]
    assert join["tcp-ip"]["enabled"] is True
    assert join["multicast"]["enabled"] is False
    assert join["auto-detection"]["enabled"] is False


def test_member_config_enables_the_health_group_alone() -> None:
    rest = rendered()["network"]["rest-api"]
    assert rest["enabled"] is True
    enabled = [name for name, group in rest["endpoint-groups"].items() if group["enabled"]]
    assert enabled == ["HEALTH_CHECK"]


def test_member_config_shuts_down_gracefully_and_binds_one_address() -> None:
    properties = rendered()["properties"]
    assert properties["hazelcast.shutdownhook.policy"] == "GRACEFUL"
    assert properties["hazelcast.socket.bind.any"] == "false"
    assert properties["hazelcast.phone.home.enabled"] == "false"


def test_member_config_quotes_awkward_names() -> None:
    awkward = 'a: "b" # c'
    config = rendered(cluster_name=awkward, map_name="x: y")
    assert config["cluster-name"] == awkward
    assert config["map"]["x: y"]["backup-count"] == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"member_port": 0},
        {"member_port": 70000},
        {"members": []},
        {"backup_count": 7},
        {"backup_count": -1},
        {"graceful_max_wait": 0},
    ],
)
def test_member_config_rejects_impossible_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):
        rendered(**overrides)


def test_member_command_runs_the_jar_with_the_config() -> None:
    argv = member_command(Path("/opt/h.jar"), Path("/etc/h.yaml"), java="/usr/bin/java")
    assert argv[0] == "/usr/bin/java"
    assert argv[1 : 1 + len(JAVA_OPTIONS)] == list(JAVA_OPTIONS)
    assert "-Dhazelcast.config=/etc/h.yaml" in argv
    assert argv[-2:] == ["-jar", "/opt/h.jar"]


def test_member_config_without_a_database_keeps_the_map_in_memory_only() -> None:
    assert "map-store" not in rendered()["map"]["messages"]


def test_member_config_with_a_database_writes_through_and_loads_eagerly() -> None:
    database = MapStoreDatabase(
        jdbc_url="jdbc:postgresql://10.0.0.9:5432/hazelog",
        user="hazelog",
        password='p"w: #1',
        table="log",
        max_entry_bytes=5_000_000,
    )
    store = rendered(database=database)["map"]["messages"]["map-store"]
    assert store["enabled"] is True
    assert store["class-name"] == "hazelog.mapstore.PostgresMessageStore"
    assert store["initial-mode"] == "EAGER"
    assert store["write-delay-seconds"] == 0
    assert store["properties"] == {
        "jdbc-url": "jdbc:postgresql://10.0.0.9:5432/hazelog",
        "user": "hazelog",
        "password": 'p"w: #1',
        "table": "log",
        "max-entry-bytes": "5000000",
    }
    assert 'p"w' not in repr(database)


def test_log_capacity_follows_heap_members_and_backups() -> None:
    heap = 256 * 2**20
    assert member_entry_budget(heap) == int(heap * 0.3)
    three = log_capacity(heap, members=3, backup_count=2, message_chars=100)
    # backup-count 2 on 3 members: every member holds every entry, so 3 members hold what one
    # does; fewer backups spread the entries and hold more.
    assert three == log_capacity(heap, members=1, backup_count=0, message_chars=100)
    assert log_capacity(heap, members=3, backup_count=1, message_chars=100) > three
    assert log_capacity(2 * heap, members=3, backup_count=2, message_chars=100) >= 2 * three - 1
    assert log_capacity(heap, members=3, backup_count=2, message_chars=1000) < three
    with pytest.raises(ValueError, match="heap_bytes"):
        member_entry_budget(0)


def test_database_must_be_a_postgresql_jdbc_url() -> None:
    with pytest.raises(ValueError, match="jdbc:postgresql"):
        MapStoreDatabase(jdbc_url="postgresql://h/db", user="u", password="p")


def test_member_command_with_jars_names_the_main_class() -> None:
    argv = member_command(
        Path("/opt/h.jar"),
        Path("/etc/h.yaml"),
        classpath=[Path("/opt/m.jar"), Path("/opt/pg.jar")],
    )
    assert "-jar" not in argv
    assert argv[-3:] == ["-cp", "/opt/h.jar:/opt/m.jar:/opt/pg.jar", MEMBER_MAIN_CLASS]
    assert "-Dhazelcast.config=/etc/h.yaml" in argv


def test_default_topology() -> None:
    specs = build_topology(
        Ports(), base_dir=Path("/b"), jar=Path("/j.jar"), hazelog=["hazelog"], java="java"
    )
    by_name = {spec.name: spec for spec in specs}
    assert list(by_name) == [
        "member-21000",
        "member-21001",
        "member-21002",
        "logging-20000",
        "logging-20001",
        "logging-20002",
        "messages",
        "facade",
    ]
    assert len({spec.port for spec in specs}) == len(specs)
    assert len({spec.log_path for spec in specs}) == len(specs)
    # Each logging instance names its own member first, then the others.
    logging_argv = by_name["logging-20001"].argv
    members = [logging_argv[i + 1] for i, arg in enumerate(logging_argv) if arg == "--member"]
    assert members == ["127.0.0.1:21001", "127.0.0.1:21000", "127.0.0.1:21002"]
    facade_argv = by_name["facade"].argv
    urls = [facade_argv[i + 1] for i, arg in enumerate(facade_argv) if arg == "--logging-url"]
    assert urls == [f"http://127.0.0.1:{port}" for port in (20000, 20001, 20002)]
    assert facade_argv[facade_argv.index("--messages-url") + 1] == "http://127.0.0.1:8081"
    # Every member gets its own rendered config, listing all three members.
    member = by_name["member-21002"]
    assert member.kind is Kind.MEMBER
    ((config_path, text),) = member.files
    assert f"-Dhazelcast.config={config_path}" in member.argv
    assert yaml.safe_load(text)["hazelcast"]["network"]["port"]["port"] == 21002


def test_shifted_ports_keep_member_offset() -> None:
    ports = Ports().shifted(500)
    assert ports.facade == 8580
    assert ports.logging == (20500, 20501, 20502)
    assert ports.members == (21500, 21501, 21502)


@pytest.mark.parametrize("offset", [-8080, 50000])
def test_shifted_ports_must_stay_tcp_ports(offset: int) -> None:
    with pytest.raises(ValueError, match="not a TCP port"):
        Ports().shifted(offset)


def test_colliding_ports_are_rejected() -> None:
    with pytest.raises(ValueError, match="collide"):
        Ports(facade=20000)


@pytest.mark.parametrize("with_database", [False, True])
@pytest.mark.parametrize(("trim_blocks", "lstrip_blocks"), [(False, False), (True, True)])
def test_member_template_renders_alike_under_other_jinja_settings(
    trim_blocks: bool, lstrip_blocks: bool, with_database: bool
) -> None:
    # The Ansible role renders this very file with its own Jinja settings.
    variables: dict[str, Any] = {
        "member_host": "10.0.0.2",
        "member_port": 21001,
        "members": MEMBERS,
        "cluster_name": "hazelog",
        "map_name": "messages",
        "backup_count": 2,
        "graceful_max_wait": 25,
    }
    database = MapStoreDatabase("jdbc:postgresql://db:5432/hazelog", "u", "p")
    if with_database:
        variables |= {
            "mapstore_jdbc_url": database.jdbc_url,
            "mapstore_user": database.user,
            "mapstore_password": database.password,
            "mapstore_table": database.table,
        }
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hazelog_tools", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=trim_blocks,
        lstrip_blocks=lstrip_blocks,
    )
    other = environment.get_template(TEMPLATE_NAME).render(**variables)
    ours = render_member_config(
        **{k: v for k, v in variables.items() if not k.startswith("mapstore_")},
        database=database if with_database else None,
    )
    assert yaml.safe_load(other) == yaml.safe_load(ours)
    assert ("map-store" in yaml.safe_load(other)["hazelcast"]["map"]["messages"]) == with_database
