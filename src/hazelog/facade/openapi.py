"""The facade's OpenAPI 3 document, served at GET /openapi.json.

Written by hand rather than generated from the routes: it is the contract clients and the fuzz
tests (schemathesis) hold the facade to, so a route change that breaks it shows up as a
failing test instead of silently changing the document.
"""

from __future__ import annotations

from typing import Any

from hazelog.web.paging import DEFAULT_LIMIT, MAX_LIMIT

# A page's cursor: ACCEPTED_AT.UUID (what `next` holds).
CURSOR_PATTERN = "^[0-9]{1,19}[.][0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

OPENAPI_PATH = "/openapi.json"

# What str.strip() removes (Python's str.isspace()); `\s` would not do, since JSON Schema
# patterns are ECMA-262 regexes, whose \s differs (no \x1c-\x1f or \x85, but \ufeff).
WHITESPACE_CLASS = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)

# A message must contain something besides whitespace (the facade answers 400 otherwise).
_MESSAGE_TEXT: dict[str, Any] = {"type": "string", "pattern": f"[^{WHITESPACE_CLASS}]"}

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "Short machine-readable code."},
        "detail": {"type": "string", "description": "Human-readable explanation."},
    },
}

_UNAVAILABLE: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Error"},
        {
            "type": "object",
            "required": ["attempts"],
            "properties": {
                "attempts": {
                    "type": "array",
                    "description": "Each logging instance tried, and why it failed.",
                    "items": {"type": "object"},
                }
            },
        },
    ]
}

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["uuid", "msg", "accepted_at"],
    "properties": {
        "uuid": {"type": "string", "format": "uuid"},
        "msg": {"type": "string"},
        "accepted_at": {"type": "integer", "description": "Nanoseconds since the epoch."},
    },
}


def _error_response(description: str, schema: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _status(value: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": [value]}},
    }


def openapi_document(max_body_bytes: int) -> dict[str, Any]:
    """The document for a facade whose request body limit is `max_body_bytes`."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hazelog facade",
            "version": "1",
            "description": (
                "Stores messages in a replicated log and reads them back in the order the "
                "facade accepted them. Every error is a JSON object with `error` and `detail`."
            ),
        },
        "paths": {
            "/": {
                "post": {
                    "operationId": "postMessage",
                    "summary": "Store one message",
                    "description": (
                        'The body is the message: JSON `{"msg": ...}` with a JSON content '
                        "type, otherwise the body itself as UTF-8 text (one trailing newline "
                        f"is dropped). At most {max_body_bytes} bytes. An optional "
                        "`Idempotency-Key` header (1 to 255 printable ASCII characters) makes "
                        "retries safe: the same key stores the message once and answers with "
                        "its UUID again (200)."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "text/plain": {"schema": _MESSAGE_TEXT},
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["msg"],
                                    "properties": {"msg": _MESSAGE_TEXT},
                                    "additionalProperties": False,
                                }
                            },
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Stored; the message's UUID.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["uuid"],
                                        "properties": {"uuid": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "200": {
                            "description": "Stored before under this Idempotency-Key.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["uuid"],
                                        "properties": {"uuid": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "400": _error_response(
                            "Not a message (empty, malformed, not UTF-8), or a bad key."
                        ),
                        "413": _error_response("Body over the size limit."),
                        "422": _error_response("Idempotency-Key used before with another message."),
                        "503": {
                            "description": (
                                "No logging instance stored it (with `attempts`), or the facade "
                                "holds too many messages already (with a Retry-After header)."
                            ),
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                        "507": _error_response("The log is full (log_full); reads still work."),
                    },
                },
                "get": {
                    "operationId": "getMessages",
                    "summary": "Every stored message, then the messages service's text",
                    "description": (
                        "text/plain (default): one message per line, then the messages "
                        "service's text; a backslash, LF and CR in a line are written as "
                        "\\\\, \\n and \\r, other line breaks as \\uXXXX. "
                        "With `Accept: application/json`: the object below. "
                        "If the messages service is unreachable the text is null (JSON) or "
                        "left out (text, with an X-Hazelog-Warning header). "
                        "With `limit` and/or `after`: one page of at most `limit` messages "
                        f"(default {DEFAULT_LIMIT}, at most {MAX_LIMIT}) after the cursor, "
                        "in accept order, with the next cursor in `next` (JSON) and a "
                        '`Link: <...>; rel="next"` header when the page is full; no '
                        "messages text."
                    ),
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        },
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "description": "The `next` of the previous page.",
                            "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The log.",
                            "content": {
                                "text/plain": {"schema": {"type": "string"}},
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["messages"],
                                        "properties": {
                                            "next": {"type": "string", "nullable": True},
                                            "messages": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Message"},
                                            },
                                            "text": {"type": "string", "nullable": True},
                                            "warnings": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                        },
                                    }
                                },
                            },
                        },
                        "400": _error_response("A bad limit or after."),
                        "503": _error_response("No logging instance answered.", "Unavailable"),
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "The process is up",
                    "responses": {
                        "200": {
                            "description": "Up.",
                            "content": {"application/json": {"schema": _status("ok")}},
                        }
                    },
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "The facade serves requests",
                    "responses": {
                        "200": {
                            "description": "Ready.",
                            "content": {"application/json": {"schema": _status("ready")}},
                        },
                        "503": _error_response("Not ready yet, or stopping."),
                    },
                }
            },
            "/status": {
                "get": {
                    "operationId": "status",
                    "summary": "Each logging instance and the cluster, as the facade sees them",
                    "description": "JSON; an HTML page when the client prefers text/html.",
                    "responses": {
                        "200": {
                            "description": "The status.",
                            "content": {
                                "application/json": {"schema": {"type": "object"}},
                                "text/html": {"schema": {"type": "string"}},
                            },
                        }
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text exposition format)",
                    "responses": {
                        "200": {
                            "description": "The facade's metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            OPENAPI_PATH: {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {"Error": _ERROR, "Unavailable": _UNAVAILABLE, "Message": _MESSAGE},
        },
    }
