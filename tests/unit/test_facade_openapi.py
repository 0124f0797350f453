"""The facade's OpenAPI document: valid, complete, served, and as strict as the facade.

The fuzzing against it runs with real backends in tests/integration/test_facade_fuzz.py.
"""

from __future__ import annotations

import re
import sys

import pytest
import schemathesis

from hazelog.config import FacadeConfig
from hazelog.facade.app import create_app
from hazelog.facade.openapi import OPENAPI_PATH, WHITESPACE_CLASS, openapi_document
from tests.unit.servers import fetch_json, serve_app


def test_document_is_valid_openapi() -> None:
    schemathesis.openapi.from_dict(openapi_document(1000)).validate()


def test_validation_would_catch_a_broken_document() -> None:
    broken = openapi_document(1000)
    broken["paths"]["/"]["post"]["responses"] = "none"
    with pytest.raises(Exception, match="none"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_route_is_documented_and_nothing_else() -> None:
    app = create_app(FacadeConfig())
    routed = {
        (method.lower(), route.uri) for route in app.router.routes for method in route.methods
    }
    paths = openapi_document(1000)["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert routed == documented


def test_body_limit_is_documented() -> None:
    post = openapi_document(12345)["paths"]["/"]["post"]
    assert "12345 bytes" in post["description"]
    assert "413" in post["responses"]


def test_message_pattern_rejects_exactly_what_the_facade_strips() -> None:
    # The facade refuses a message that str.strip() empties; the document must say the same.
    whitespace = re.compile(f"[{WHITESPACE_CLASS}]")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(whitespace.fullmatch(char)) == char.isspace(), hex(code)


async def test_served_document_matches() -> None:
    config = FacadeConfig(max_body_bytes=2048)
    async with serve_app(create_app(config)) as url:
        status, body = await fetch_json("GET", url + OPENAPI_PATH)
    assert status == 200
    assert body == openapi_document(2048)
