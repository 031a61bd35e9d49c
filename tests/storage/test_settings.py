"""The secret every server process shares (:func:`openarena.storage.settings.shared_secret`):
created once, the same for every caller, also when they race, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from openarena.storage import Database
from openarena.storage.settings import shared_secret


def test_one_secret_for_every_process(db):
    with ThreadPoolExecutor(8) as pool:
        got = set(pool.map(lambda _: shared_secret(db), range(16)))
    assert len(got) == 1
    (secret,) = got
    assert len(secret) == 64 and int(secret, 16) >= 0
    # another connection (another worker, or the server after a restart) reads the same
    again = Database.open(db.url, run_migrations=False)
    try:
        assert shared_secret(again) == secret
    finally:
        again.dispose()
