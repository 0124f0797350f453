"""Service logging: structured journal entries under systemd, plain stderr lines otherwise."""

from __future__ import annotations

import logging
import os
import sys

from systemd.journal import JournalHandler


def under_systemd() -> bool:
    # systemd sets INVOCATION_ID for every unit and JOURNAL_STREAM when stderr is the journal.
    return bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))


def setup_logging(identifier: str, level: int = logging.INFO) -> logging.Logger:
    """Configure the "hazelog" logger once per process.

    Extra fields given as `extra={"UUID": ..., "PORT": ...}` become journal fields
    (JournalHandler passes upper-case record attributes through).
    """
    logger = logging.getLogger("hazelog")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler: logging.Handler
    if under_systemd():
        handler = JournalHandler(SYSLOG_IDENTIFIER=identifier)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {identifier} %(levelname)s %(message)s")
        )
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
