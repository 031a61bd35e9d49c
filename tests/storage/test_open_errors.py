"""Opening a database that is not one, or is not there: StorageError naming the file, and
readers (``create=False``, the default when not migrating) never create a file or a folder."""

from __future__ import annotations

import os

import pytest

from openarena.storage import Database, database_url
from openarena.storage.db import StorageError


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(4096))
    for migrate in (False, True):  # export (check) and serve (migrate)
        with pytest.raises(StorageError) as info:
            Database.open(f"sqlite:///{junk}", run_migrations=migrate)
        assert str(info.value).startswith(f"{junk}: not a SQLite database")
        assert "\n" not in str(info.value)


def test_readers_do_not_create_a_database_or_its_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENARENA_DATABASE_URL", raising=False)
    missing = tmp_path / "new" / "dir" / "x.db"
    with pytest.raises(StorageError, match="no such database file"):
        Database.open(f"sqlite:///{missing}", run_migrations=False)
    with pytest.raises(StorageError, match="no such database file"):
        Database.open(f"sqlite:///{missing}", create=False)  # migrates an existing one only
    with pytest.raises(StorageError, match="no such database file"):
        Database.open(None, tmp_path / "data", run_migrations=False)
    with pytest.raises(StorageError, match="is a folder"):
        Database.open(f"sqlite:///{tmp_path}", run_migrations=False)
    assert list(tmp_path.iterdir()) == []
    assert database_url(data_dir=tmp_path / "d2", create=False).endswith("/d2/openarena.db")
    assert not (tmp_path / "d2").exists()


def test_writers_still_create_and_readers_then_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'a.db'}"
    Database.open(url).dispose()  # serve: folder and database created, migrated
    assert (tmp_path / "sub" / "a.db").stat().st_size > 0
    db = Database.open(url, run_migrations=False)  # export: reads it
    from sqlalchemy import inspect

    assert {"battles", "votes"} <= set(inspect(db.engine).get_table_names())
    db.dispose()
    mem = Database.open("sqlite://", run_migrations=True, create=False)  # in memory: nothing to refuse
    mem.dispose()


def test_data_folder_that_is_a_file_or_cannot_be_made(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(StorageError, match="is a file, not a folder"):
        database_url(data_dir=afile)
    with pytest.raises(StorageError, match="cannot create the data folder"):
        database_url(data_dir=afile / "below")
    with pytest.raises(StorageError, match="cannot create the database folder"):
        Database.open(f"sqlite:///{afile / 'below' / 'x.db'}")


def test_readers_never_migrate_an_older_database(tmp_path):
    """Hostile review: reading commands created tables on an empty PostgreSQL database; now a
    reader never migrates, and an arena database at an older schema is named, exit 2."""
    from typer.testing import CliRunner

    from openarena.cli.main import app
    from sqlalchemy import create_engine

    from openarena.storage.db import migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    migrate(engine, "0001")  # an arena database from before this version
    engine.dispose()
    for args in (["leaderboard", url], ["redteam", "leaderboard", url]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert "schema version 0001" in r.output and "openarena serve" in r.output
    from sqlalchemy import create_engine, inspect

    assert "redteam_rounds" not in inspect(create_engine(url)).get_table_names()
