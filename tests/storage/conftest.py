"""Storage fixtures: ``db`` runs each test on SQLite (a temporary file) and on PostgreSQL."""

from __future__ import annotations

import secrets

import pytest

from openarena.storage import Database
from tests.storage.postgres import create_schema, drop_schema, postgres_url, schema_url  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        d = Database.open(f"sqlite:///{tmp_path / 'arena.db'}")
        yield d
        d.dispose()
        return
    base = request.getfixturevalue("postgres_url")
    schema = "t_" + secrets.token_hex(6)
    create_schema(base, schema)
    d = Database.open(schema_url(base, schema))
    try:
        yield d
    finally:
        d.dispose()
        drop_schema(base, schema)
