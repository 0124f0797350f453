"""`hazelog check-config`: what Ansible's `validate:` runs on a rendered service config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hazelog.cli import main


def run(service: str, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check-config", service, str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("service", "text"),
    [
        ("messages", 'host = "192.168.56.11"\nport = 8081\n'),
        (
            "logging",
            'host = "192.168.56.21"\nport = 20000\ncluster_name = "hazelog"\n'
            'map_name = "messages"\nmembers = ["192.168.56.21:21000", "192.168.56.22:21001"]\n',
        ),
        (
            "facade",
            'host = "192.168.56.10"\nport = 8080\nlogging_urls = ["http://192.168.56.21:20000"]\n'
            'messages_url = "http://192.168.56.11:8081"\ndeadline = 10.0\n',
        ),
    ],
)
def test_a_valid_config_passes(tmp_path: Path, service: str, text: str) -> None:
    path = tmp_path / f"{service}.toml"
    path.write_text(text, encoding="utf-8")
    code, output = run(service, path)
    assert code == 0, output
    assert f"valid {service} config" in output


@pytest.mark.parametrize(
    ("service", "text", "fragment"),
    [
        ("messages", "port = [\n", "not valid TOML"),
        ("messages", "port = 70000\n", "port"),
        ("logging", 'members = ["no-port"]\n', "members"),
        ("logging", "cluster = 'typo'\n", "cluster"),
        ("facade", 'logging_urls = ["not a url"]\n', "logging_urls"),
        ("facade", "deadline = 0\n", "deadline"),
    ],
)
def test_a_bad_config_exits_non_zero_naming_the_problem(
    tmp_path: Path, service: str, text: str, fragment: str
) -> None:
    path = tmp_path / f"{service}.toml"
    path.write_text(text, encoding="utf-8")
    code, output = run(service, path)
    assert code == 1, output
    assert str(path) in output
    assert fragment in output
    assert "Traceback" not in output


def test_a_config_of_another_service_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logging.toml"
    path.write_text('port = 20000\nmembers = ["192.168.56.21:21000"]\n', encoding="utf-8")
    code, output = run("messages", path)
    assert code == 1
    assert "members" in output


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    code, output = run("facade", tmp_path / "absent.toml")
    assert code == 1
    assert "cannot read config" in output


def test_an_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("port = 1\n", encoding="utf-8")
    code, output = run("hazelcast", path)
    assert code == 2
    assert "hazelcast" in output
