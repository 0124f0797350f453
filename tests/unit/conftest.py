"""Unit-test setup: many apps with the same name are built in one process."""

from __future__ import annotations

from sanic import Sanic

# Sanic refuses a second app with a name already registered, except in test mode.
Sanic.test_mode = True
