"""Where the arena keeps its battles and votes: SQLAlchemy 2 models, Alembic migrations run
programmatically, repository functions and the export to public formats.

- :mod:`openarena.storage.db`: the database URL (SQLite in WAL mode in a data folder by default,
  PostgreSQL when ``OPENARENA_DATABASE_URL`` says so), the engine and :func:`migrate`.
- :mod:`openarena.storage.models`: the tables (``battles``, ``votes``, ``arena_settings``).
- :mod:`openarena.storage.battles`: the battle's lifecycle (create a battle, take and renew a
  turn's streaming lease, save the turn).
- :mod:`openarena.storage.votes`: the vote transaction (record a vote and close its battle, alone
  or in a group commit, deciding in the same transaction whether it counts).
- :mod:`openarena.storage.reading`: reading back (the voted battles as a
  :class:`~openarena.data.battles.BattleTable`, votes per model).
- :mod:`openarena.storage.settings`: values every server process shares (the cookie secret,
  generated once, table ``arena_settings``).
- :mod:`openarena.storage.export`: public formats (FastChat clean_battle JSON, JSONL, Parquet, CSV).
- :mod:`openarena.storage.integrity`: what the vote-integrity checks read and write (a voter
  key's battles and votes in a window, advisory locks, withdrawal of a flagged key's votes).

This layer imports the data layer and nothing above it (never :mod:`openarena.serving`).
"""

from openarena.storage.db import Database, database_url, is_database_url, migrate, open_database

__all__ = ["Database", "database_url", "is_database_url", "migrate", "open_database"]
