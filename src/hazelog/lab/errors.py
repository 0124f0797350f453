"""The one error type of the lab: a short message the CLI prints as one line."""

from __future__ import annotations

from collections.abc import Sequence


class LabError(Exception):
    """A lab command cannot go on. `details` (e.g. a console log tail) follow the message."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
