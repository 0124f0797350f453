"""Measured figures the reliability tests report (issue 5's closing note asks for them).

Each figure set goes to the terminal (even under pytest's output capture) and to
.cache/figures/NAME.json, so a `make test` run leaves them behind for the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES_DIR = REPO / ".cache/figures"


def report_figures(config: pytest.Config, name: str, figures: dict[str, Any]) -> None:
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(
        json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    line = f"[figures] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    # Teardown output is captured (and dropped on success) unless capturing is paused.
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)
