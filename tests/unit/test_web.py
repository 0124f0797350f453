"""Shared service pieces: JSON errors for the unexpected, systemd notifications, logging."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sanic import Request
from sanic.response import HTTPResponse
from systemd.journal import JournalHandler

from hazelog.config import LoggingConfig, MessagesConfig
from hazelog.logging_service.app import create_app as create_logging_app
from hazelog.logging_service.store import MessageStore
from hazelog.messages.app import create_app as create_messages_app
from hazelog.web.app import ServiceContext, build_app
from hazelog.web.logs import setup_logging, under_systemd
from hazelog.web.sdnotify import notify, watchdog_interval
from tests.unit.servers import fetch, fetch_json, serve_app, wait_until
from tests.unit.test_logging_service import FakeStore


async def test_unexpected_exception_is_a_json_500_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app("hazelog-test-boom", ServiceContext(MessagesConfig()))

    @app.get("/boom")
    async def boom(request: Request) -> HTTPResponse:
        raise RuntimeError("secret internals")

    async with serve_app(app) as url:
        status, headers, body = await fetch("GET", url + "/boom")
    assert status == 500
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"error":"internal_error","detail":"internal server error"}'
    logged = [r for r in caplog.records if r.exc_info and "secret internals" in str(r.exc_info[1])]
    assert logged, "the traceback must go to the log"


@contextlib.contextmanager
def notify_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield sock
    finally:
        sock.close()


def drain(sock: socket.socket) -> list[str]:
    received = []
    with contextlib.suppress(BlockingIOError):
        while True:
            received.append(sock.recv(4096).decode())
    return received


def test_notify_is_a_no_op_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_notify_sends_to_the_notify_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with notify_socket(monkeypatch, tmp_path) as sock:
        assert notify("READY=1") is True
        assert drain(sock) == ["READY=1"]


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        (None, None, None),
        ("4000000", None, 2.0),
        ("4000000", "self", 2.0),
        ("4000000", "1", None),
        ("0", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    import os

    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert watchdog_interval() == expected


async def test_ready_and_watchdog_are_sent_once_the_service_listens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with notify_socket(monkeypatch, tmp_path) as sock:
        got: list[str] = []

        async def pinged_twice() -> bool:
            got.extend(drain(sock))
            return got.count("WATCHDOG=1") >= 2

        async with serve_app(create_messages_app(MessagesConfig())):
            await wait_until(pinged_twice)
        got.extend(drain(sock))
    assert got.count("READY=1") == 1
    assert got[-1] == "STOPPING=1"


async def test_logging_instance_is_ready_only_once_the_cluster_is_connected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gate = asyncio.Event()

    async def open_store(config: LoggingConfig) -> MessageStore:
        await gate.wait()
        return FakeStore()

    with notify_socket(monkeypatch, tmp_path) as sock:
        async with serve_app(create_logging_app(LoggingConfig(), open_store)) as url:
            # Listening, answering, but not connected: no READY=1 yet.
            assert (await fetch_json("GET", url + "/ready"))[0] == 503
            assert drain(sock) == []
            gate.set()
            got: list[str] = []

            async def announced() -> bool:
                got.extend(drain(sock))
                return "READY=1" in got

            await wait_until(announced)
            assert (await fetch_json("GET", url + "/ready"))[0] == 200


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"INVOCATION_ID": "abc"}, True), ({"JOURNAL_STREAM": "8:123"}, True)],
)
def test_systemd_is_detected_from_its_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert under_systemd() is expected


@pytest.fixture
def restore_hazelog_logger() -> Iterator[None]:
    logger = logging.getLogger("hazelog")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.mark.usefixtures("restore_hazelog_logger")
def test_logging_goes_to_the_journal_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOCATION_ID", "abc")
    logger = setup_logging("hazelog-logging-20000")
    [handler] = logger.handlers
    assert isinstance(handler, JournalHandler)
    sent: list[dict[str, object]] = []

    def record(text: str, /, **fields: object) -> None:
        sent.append({"MESSAGE": text, **fields})

    handler.send = record
    logging.getLogger("hazelog.logging").info(
        "received %s: %s", "u1", "m", extra={"UUID": "u1", "PORT": 20000}
    )
    [entry] = sent
    assert entry["MESSAGE"] == "received u1: m"
    assert (entry["UUID"], entry["PORT"]) == ("u1", 20000)
    assert entry["SYSLOG_IDENTIFIER"] == "hazelog-logging-20000"


@pytest.mark.usefixtures("restore_hazelog_logger")
def test_logging_goes_to_stderr_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logger = setup_logging("hazelog-logging-20000")
    [handler] = logger.handlers
    assert not isinstance(handler, JournalHandler)
    logging.getLogger("hazelog.logging").info("received u: m", extra={"UUID": "u", "PORT": 1})
    assert "hazelog-logging-20000 INFO received u: m" in capsys.readouterr().err
