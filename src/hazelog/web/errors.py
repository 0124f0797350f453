"""Every error a service answers is JSON: {"error": "<short code>", "detail": "<human text>"}.

Sanic's own exceptions (404, 405, 413, ...) keep their status; anything unexpected becomes a
500 whose traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

from sanic import Request
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

log = logging.getLogger("hazelog.web")


class ApiError(SanicException):
    """A client-visible error with its own short code (e.g. `empty_message`)."""

    quiet = True

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail, status_code=status)
        self.error = error


def error_body(error: str, detail: str) -> dict[str, str]:
    return {"error": error, "detail": detail}


# Codes whose HTTP phrase is long-winded or dated.
SHORT_CODES = {413: "payload_too_large", 500: "internal_error", 503: "unavailable"}


def _short_code(status: int) -> str:
    if status in SHORT_CODES:
        return SHORT_CODES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"http_{status}"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


class JsonErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, SanicException):
            status = exception.status_code
            code = getattr(exception, "error", None) or _short_code(status)
            detail = str(exception) or HTTPStatus(status).phrase
            # Sanic puts e.g. the Allow header of a 405 on the exception.
            headers = dict(getattr(exception, "headers", None) or {})
            if status >= 500:
                # An ApiError 5xx is an expected state (e.g. cluster away), not a bug.
                level = logging.WARNING if isinstance(exception, ApiError) else logging.ERROR
                log.log(
                    level,
                    "%s %s -> %d: %s",
                    request.method,
                    request.path,
                    status,
                    detail,
                )
            return json(error_body(code, detail), status=status, headers=headers)
        log.error(
            "unhandled error on %s %s",
            request.method,
            request.path,
            exc_info=(type(exception), exception, exception.__traceback__),
        )
        return json(error_body("internal_error", "internal server error"), status=500)
