"""Shared test policy: a test that needs a real part (root, Vagrant, LXC, Java, Hazelcast) runs
in CI always; on a user's machine without that part it skips with the reason."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip the calling test when `condition` is false, except in CI where it fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}")
    pytest.skip(reason)
