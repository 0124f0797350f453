"""Service configuration: one TOML file per service (templated by Ansible), or CLI flags.

Every field has a default that matches the local topology, so `hazelog messages` alone runs.
A value given on the command line wins over the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

Port = Annotated[int, Field(ge=1, le=65535)]
# "host:port" of a Hazelcast member, as the client and the member config take it.
MemberAddress = Annotated[str, Field(pattern=r"^[^\s:]+:\d{1,5}$")]

DEFAULT_MAX_BODY_BYTES = 64 * 1024
# Connections the kernel queues before the server accepts them. Sanic's 100 overflowed under
# 4x overload (TcpExt ListenOverflows): dropped SYNs are retried by the client seconds later,
# a multi-second tail; a queued connection is answered (or refused early) at once instead.
# The kernel caps it at net.core.somaxconn (4096 by default).
DEFAULT_BACKLOG = 1024


class ConfigError(Exception):
    """A configuration file or flag is unusable; the message names the field."""


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: Port
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    backlog: int = Field(default=DEFAULT_BACKLOG, ge=1, le=65535)


class MessagesConfig(ServiceConfig):
    port: Port = 8081
    text: str = "not implemented yet"


class LoggingConfig(ServiceConfig):
    port: Port = 20000
    # The facade forwards a message of up to its own limit wrapped in JSON, where escaping
    # can make every byte six ("\\u001f"): the instance must accept that much, or a message
    # the facade accepted would bounce.
    max_body_bytes: int = Field(default=8 * DEFAULT_MAX_BODY_BYTES, ge=1)
    cluster_name: str = "hazelog"
    map_name: str = "messages"
    # Own member first: the client connects there first and fails over to the rest.
    members: list[MemberAddress] = Field(default_factory=lambda: ["127.0.0.1:21000"], min_length=1)


class FacadeConfig(ServiceConfig):
    port: Port = 8080
    logging_urls: list[HttpUrl] = Field(
        default_factory=lambda: [
            HttpUrl(f"http://127.0.0.1:{port}") for port in (20000, 20001, 20002)
        ],
        min_length=1,
    )
    messages_url: HttpUrl = HttpUrl("http://127.0.0.1:8081")
    # Seconds. One attempt may take request_timeout; all attempts together, deadline.
    request_timeout: float = Field(default=2.0, gt=0)
    deadline: float = Field(default=10.0, gt=0)
    cooldown: float = Field(default=5.0, ge=0)
    # Messages the facade holds at most (waiting for a batch or on their way to a logging
    # instance); past it a POST gets 503 with Retry-After at once (see README, back-pressure).
    max_pending: int = Field(default=128, ge=1)


ConfigT = TypeVar("ConfigT", bound=ServiceConfig)


def load_config(
    model: type[ConfigT], path: Path | None = None, overrides: dict[str, Any] | None = None
) -> ConfigT:
    """Read `path` (TOML) if given, apply the non-None `overrides`, validate."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    values.update({k: v for k, v in (overrides or {}).items() if v not in (None, ())})
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        where = f"config {path}" if path else "configuration"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc
