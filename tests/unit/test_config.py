"""Configuration parsing (hazelog.config) and how the service commands report bad config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hazelog.cli import main
from hazelog.config import (
    DEFAULT_BACKLOG,
    DEFAULT_MAX_BODY_BYTES,
    ConfigError,
    FacadeConfig,
    LoggingConfig,
    MessagesConfig,
    load_config,
)


def test_defaults_match_the_local_topology() -> None:
    facade = load_config(FacadeConfig)
    assert facade.port == 8080
    assert [str(u) for u in facade.logging_urls] == [
        "http://127.0.0.1:20000/",
        "http://127.0.0.1:20001/",
        "http://127.0.0.1:20002/",
    ]
    assert str(facade.messages_url) == "http://127.0.0.1:8081/"
    assert facade.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 65536
    assert facade.backlog == DEFAULT_BACKLOG == 1024
    logging_config = load_config(LoggingConfig)
    assert (logging_config.port, logging_config.cluster_name) == (20000, "hazelog")
    assert logging_config.members == ["127.0.0.1:21000"]
    assert load_config(MessagesConfig).port == 8081


def test_file_values_and_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "logging.toml"
    path.write_text(
        'host = "192.168.77.21"\nport = 20001\ncluster_name = "lab"\n'
        'members = ["192.168.77.21:21001", "192.168.77.22:21002"]\nbacklog = 4096\n'
    )
    config = load_config(LoggingConfig, path, {"port": 20005, "members": (), "host": None})
    assert config.host == "192.168.77.21"
    assert config.port == 20005  # the flag wins
    assert config.cluster_name == "lab"
    assert config.backlog == 4096
    assert config.members == ["192.168.77.21:21001", "192.168.77.22:21002"]  # () = not given


@pytest.mark.parametrize(
    ("model", "text", "fragment"),
    [
        (MessagesConfig, "port = 0\n", "port"),
        (MessagesConfig, "prot = 8081\n", "prot"),
        (LoggingConfig, 'members = ["no-port"]\n', "members"),
        (LoggingConfig, "members = []\n", "members"),
        (FacadeConfig, 'logging_urls = ["not a url"]\n', "logging_urls"),
        (FacadeConfig, "deadline = 0\n", "deadline"),
        (FacadeConfig, "max_body_bytes = 0\n", "max_body_bytes"),
        (MessagesConfig, "backlog = 0\n", "backlog"),
        (FacadeConfig, "port = [\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_problem(
    tmp_path: Path, model: type[MessagesConfig], text: str, fragment: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(model, path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(MessagesConfig, tmp_path / "absent.toml")


@pytest.mark.parametrize(
    "args",
    [
        ["messages", "--config", "/nonexistent/messages.toml"],
        ["messages", "--port", "70000"],
        ["logging", "--member", "nohostport"],
        ["facade", "--logging-url", "ftp//broken"],
        ["facade", "--messages-url", "nope"],
    ],
)
def test_service_commands_fail_with_one_line_on_bad_config(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
