"""Bad input against the facade with real backends (members, logging instances, messages).

Two fuzzers: schemathesis generates requests from the facade's own /openapi.json (valid and
schema-violating bodies, unexpected methods, missing bodies), and a Hypothesis test sends raw
bytes the document cannot describe (wrong encodings, odd content types and Accept headers,
oversized bodies, JSON nested at any depth, long numbers, unknown paths). For every request:
no 5xx, every error is a JSON {"error", "detail"} body, and the stored log changes only by the
one message a 201 names.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hazelog.config import DEFAULT_MAX_BODY_BYTES
from hazelog.facade.openapi import OPENAPI_PATH, openapi_document
from tests.deploy.figures import report_figures
from tests.integration.support import Topology, http

pytestmark = pytest.mark.integration

TEXT = "text/plain"
JSON = "application/json"

# Per operation and phase (schemathesis' fuzzing phase); the coverage phase adds its own cases.
SCHEMATHESIS_EXAMPLES = 150
RAW_EXAMPLES = 300


@dataclass
class Tally:
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def figures(self) -> dict[str, Any]:
        return {"cases": self.cases, "statuses": dict(sorted(self.statuses.items()))}


@pytest.fixture(scope="module")
def tallies(request: pytest.FixtureRequest) -> Iterator[dict[str, Tally]]:
    counted = {"schemathesis": Tally(), "raw": Tally()}
    yield counted
    figures: dict[str, Any] = {"cases": sum(t.cases for t in counted.values())}
    figures.update({name: tally.figures() for name, tally in counted.items()})
    report_figures(request.config, "fuzz", figures)


def stored(topology: Topology) -> list[dict[str, Any]]:
    status, body = http("GET", topology.facade_url, headers={"Accept": "application/json"})
    assert status == 200, body
    messages: list[dict[str, Any]] = json.loads(body)["messages"]
    return messages


def check_answer(
    method: str,
    path: str,
    status: int,
    content_type: str,
    body: bytes,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
) -> None:
    assert status < 500, (status, body[:300])
    if status >= 400 and method != "HEAD":
        assert content_type.startswith("application/json"), (status, content_type, body[:300])
        error = json.loads(body)
        assert isinstance(error.get("error"), str), error
        assert isinstance(error.get("detail"), str), error
    if status == 201:
        # Accepted: exactly this one message was added, at the end.
        assert method == "POST", (method, path)
        uuid = json.loads(body)["uuid"]
        assert after[: len(before)] == before
        assert [m["uuid"] for m in after[len(before) :]] == [uuid]
    else:
        # A rejected or read-only request leaves the log exactly as it was.
        assert after == before, (method, path, status)


# Built from the same function the facade serves /openapi.json with (the first test checks
# the served copy). schemathesis' fixture-based loading does not work with pytest 9 yet.
schema = schemathesis.openapi.from_dict(openapi_document(DEFAULT_MAX_BODY_BYTES))
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=SCHEMATHESIS_EXAMPLES,
    # No example database: nothing is written into the working tree.
    database="none",
)


def test_facade_serves_the_document(shared_topology: Topology) -> None:
    url = urllib.parse.urljoin(shared_topology.facade_url, OPENAPI_PATH)
    status, body = http("GET", url)
    assert status == 200
    assert json.loads(body) == schema.raw_schema


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None, database=None)
def test_facade_holds_to_its_openapi_document(
    case: schemathesis.Case[Any], shared_topology: Topology, tallies: dict[str, Tally]
) -> None:
    before = stored(shared_topology)
    response = case.call(base_url=shared_topology.facade_url.rstrip("/"), timeout=15)
    after = stored(shared_topology)
    tallies["schemathesis"].count(response.status_code)
    content_type = next(
        (v[0] for k, v in response.headers.items() if k.lower() == "content-type" and v), ""
    )
    check_answer(
        case.method.upper(),
        case.path,
        response.status_code,
        content_type,
        response.content,
        before,
        after,
    )
    if response.status_code == 201:
        # The message is what went over the wire (schemathesis serializes even schema-violating
        # bodies somehow, and any text is a message).
        raw = response.request.body or b""
        assert isinstance(raw, bytes | str), type(raw)
        wire = raw.encode() if isinstance(raw, str) else raw
        is_json = str(response.request.headers.get("Content-Type") or "").startswith(JSON)
        sent = json.loads(wire)["msg"] if is_json else wire.decode()
        assert after[-1]["msg"] in (sent, sent.removesuffix("\n").removesuffix("\r"))
    # Schemathesis' own checks: documented status codes, content types and response schemas,
    # schema-violating input rejected, valid input accepted.
    case.validate_response(response)


# Raw requests: what a broken client or an attacker sends, beyond the document's reach.
LIMIT = DEFAULT_MAX_BODY_BYTES


def nested(depth: int, opener: str) -> bytes:
    """`depth` levels of `opener`, closed, then cut to one byte past the body limit."""
    closer = {"[": "]", '{"a":': "}", '{"msg":[': "]}"}[opener]
    body = opener * depth + "1" + closer * depth
    return body.encode()[: LIMIT + 1]


def large(size: int, unit: str) -> bytes:
    """A message of `size` bytes of one character, bare or as a JSON number or string."""
    filler = (unit * size).encode()[:size]
    return b'{"msg": ' + filler + b"}" if unit in "1[" else b'{"msg": "' + filler + b'"}'


# Weighted towards POST / (one_of picks a branch first), where a request can change the log.
methods = st.one_of(
    st.just("POST"),
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
)
paths = st.one_of(
    st.just("/"),
    st.sampled_from(["/", "/health", "/ready", OPENAPI_PATH, "//", "/?x=1", "/%ff", "/..%2f"]),
    st.text(max_size=30).map(lambda s: "/" + urllib.parse.quote(s, safe="")),
)
content_types = st.sampled_from(
    [
        None,
        "text/plain",
        "text/plain; charset=utf-16",
        "application/json",
        "application/json; charset=latin-1",
        "application/problem+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "no/such;;type",
    ]
)
accepts = st.sampled_from(
    [None, "application/json", "text/plain", "*/*", "", "application/json;q=0", "x;;q=a,*/*"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.text(min_size=1, max_size=50).map(lambda s: s.encode("utf-16")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=50).map(lambda s: json.dumps({"msg": s}).encode()),
    # Lone surrogates written as JSON escapes, and bytes no UTF-8 decoder accepts.
    st.sampled_from([b'{"msg": "\\ud800"}', b"\xff\xfe\x00", b"caf\xe9", b"\xc3\x28"]),
    # Around the size limit: the largest body accepted, and one byte more.
    st.sampled_from([b"a" * LIMIT, b"a" * (LIMIT + 1), b"\xe2\x82\xac" * (LIMIT // 3 + 1)]),
    # Deep nesting, at any depth the body limit allows (the parser's stack ends near 1,000).
    st.builds(nested, st.integers(1, LIMIT // 2), st.sampled_from(["[", '{"a":', '{"msg":['])),
    # Large: bodies near and far past the limit, long numbers, one huge string.
    st.builds(large, st.integers(LIMIT - 64, 16 * LIMIT), st.sampled_from(["1", "a", "é", "["])),
)


@settings(
    max_examples=RAW_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
# The cases that matter most run every time, whatever Hypothesis draws besides.
@example(method="POST", path="/", content_type=TEXT, accept=None, body=b"a" * LIMIT)
@example(method="POST", path="/", content_type=TEXT, accept=None, body=b"a" * (LIMIT + 1))
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'{"msg": "a' + b"a" * LIMIT)
@example(method="POST", path="/", content_type=TEXT, accept=None, body=b"caf\xe9")
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'{"msg": "\xff"}')
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'{"msg": "\\ud800"}')
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'{"msg": "x", "y": 1}')
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'["msg"]')
@example(method="POST", path="/", content_type=JSON, accept=None, body=b"{")
@example(method="POST", path="/", content_type=TEXT, accept=None, body=b" \n")
@example(method="POST", path="/", content_type=JSON, accept=None, body=b"[" * LIMIT)
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'{"msg":' + b"[" * 1000)
@example(method="POST", path="/", content_type=JSON, accept=None, body=b'{"a":' * (LIMIT // 5))
@example(method="POST", path="/", content_type=JSON, accept=None, body=large(5_000, "1"))
@example(method="POST", path="/", content_type=JSON, accept=None, body=large(LIMIT - 12, "a"))
@example(method="POST", path="/", content_type=TEXT, accept=None, body=b"a" * (16 * LIMIT))
@example(method="POST", path="/", content_type=None, accept=None, body=b"")
@example(method="GET", path="/", content_type=None, accept="x;;q=a,*/*", body=b"")
@example(method="PUT", path="/", content_type=TEXT, accept=None, body=b"x")
@example(method="DELETE", path="/health", content_type=None, accept=None, body=b"")
@given(
    method=methods,
    path=paths,
    content_type=content_types,
    accept=accepts,
    body=bodies,
)
def test_raw_requests_never_break_the_facade(
    shared_topology: Topology,
    tallies: dict[str, Tally],
    method: str,
    path: str,
    content_type: str | None,
    accept: str | None,
    body: bytes,
) -> None:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    before = stored(shared_topology)
    url = shared_topology.facade_url.rstrip("/") + path
    status, answer_type, answer = raw_request(method, url, body, headers)
    after = stored(shared_topology)
    tallies["raw"].count(status)
    check_answer(
        method, urllib.parse.urlsplit(path).path, status, answer_type, answer, before, after
    )


def raw_request(
    method: str, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    """One request, body sent whatever the method; (status, content type, body)."""
    parts = urllib.parse.urlsplit(url)
    connection = HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()
