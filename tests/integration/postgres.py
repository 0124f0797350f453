"""The throwaway PostgreSQL server of the integration tests: the bench's own (it starts one
for its durable stages too), so both start and stop it the same way."""

from __future__ import annotations

from hazelog_tools.bench.postgres import BIN, Postgres, available, start_postgres

__all__ = ["BIN", "Postgres", "available", "start_postgres"]
