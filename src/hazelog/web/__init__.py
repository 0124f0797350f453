"""Pieces every hazelog Sanic service shares: JSON errors, body checks, systemd glue."""
