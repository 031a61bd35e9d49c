"""Values every server process must share, kept in the database (table ``arena_settings``).

The one such value today is the secret that signs session cookies and CSRF tokens when the
operator has not set one (``OPENARENA_SECRET`` / ``--secret-file``): it is generated once, by
whichever process asks first, and stored in a transaction whose insert keeps the first value
if two processes race (``INSERT ... ON CONFLICT DO NOTHING`` then a read), so every worker of
``openarena serve --workers N`` and every restart use the same key: sessions and their battles
survive restarts and any worker accepts any cookie.

Anyone who can read the database can read this secret (and forge cookies); they can read the
votes too. An operator who keeps the database and the web tier apart sets the secret instead.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError

from openarena.storage.db import Database, StorageError, _driver_error
from openarena.storage.models import ArenaSetting

__all__ = ["SECRET_NAME", "shared_secret"]

S = ArenaSetting.__table__
#: Name of the cookie secret's row.
SECRET_NAME = "session_secret"


def shared_secret(db: Database, name: str = SECRET_NAME) -> str:
    """The value of ``name`` in ``arena_settings``, created as 64 random hex digits (256 bits,
    :func:`secrets.token_hex`) on first use.

    Every process calling this on the same database gets the same string, also when several
    call it at the same moment (the primary key keeps the first insert; the others read it).
    Returns: the stored value (str).
    Raises: StorageError when the database cannot be reached or was not migrated (no table).
    """
    value = secrets.token_hex(32)
    ins = pg_insert(S) if db.backend == "postgresql" else sqlite_insert(S)
    stmt = ins.values(name=name, value=value, created_at=time.time()).on_conflict_do_nothing(index_elements=["name"])
    try:
        with db.write() as conn:
            conn.execute(stmt)
        with db.read() as conn:
            stored = conn.execute(select(S.c.value).where(S.c.name == name)).scalar_one()
    except DatabaseError as e:
        raise _driver_error(db.engine.url, e, "read the shared secret from") from None
    except Exception as e:  # NoResultFound: cannot happen after the insert; say so plainly
        raise StorageError(f"cannot read the shared secret from {db.describe()}: {type(e).__name__}") from None
    return stored
