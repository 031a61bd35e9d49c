"""The database: where it is, how to connect, and its schema migrations.

Where (:func:`database_url`), first match wins:

1. an explicit URL (``openarena serve --db URL``, ``Database.open(url)``);
2. the environment variable ``OPENARENA_DATABASE_URL`` (e.g.
   ``postgresql://arena:secret@db.example.org/arena``);
3. SQLite in a data folder: ``<data_dir>/openarena.db`` where data_dir is the argument, else
   ``OPENARENA_DATA_DIR``, else ``./arena-data`` (created when missing, unless the database is
   only read: ``create=False``).

Readers (``openarena export``, ``openarena leaderboard db``) open with ``create=False``: a SQLite
file that does not exist is a StorageError instead of a new empty database (and its folder).
A file that is not a SQLite database is a StorageError naming it, not a driver traceback.

``postgres://`` and ``postgresql://`` URLs are driven by psycopg 3 (``postgresql+psycopg://``).

SQLite runs in WAL mode (readers never block the one writer), ``foreign_keys=ON``, a busy
timeout (``lock_timeout_s``, default 30 s; the web arena uses a few seconds), and ``synchronous=NORMAL`` (a commit is in the WAL file before it returns: safe when
the process is killed) except for votes, committed with ``synchronous=FULL``
(:meth:`Database.write` ``durable=True``: the WAL is fsynced, so an acknowledged vote also
survives a power loss). ``OPENARENA_SQLITE_SYNCHRONOUS=FULL`` makes every write durable so;
``OPENARENA_SQLITE_VOTE_SYNCHRONOUS=NORMAL`` commits votes like the rest (faster: votes then
survive a killed process but not a power loss). Checkpoints are passive, in a background
thread, never inside a commit. Write transactions start with
``BEGIN IMMEDIATE`` (:meth:`Database.write`), so two writers queue on the busy timeout instead
of failing with "database is locked" when a read lock would have to be upgraded.

Failures are told, never hidden: a write that cannot take the write lock within
``lock_timeout_s`` fails (SQLite busy timeout and the in-process writer lock; PostgreSQL
``lock_timeout``); a SQLite file that was deleted or replaced while open (its folder removed,
say) fails every write, also right after a commit, whose data then went to the unlinked file
(:class:`DatabaseGone`), so the caller never acknowledges it. :meth:`Database.health` checks
that the database can really be written (the web arena's ``/healthz``).

Migrations are Alembic revisions in ``openarena/storage/migrations/versions``, applied
programmatically by :func:`migrate` (no alembic.ini needed).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.pool import NullPool

from openarena.errors import OpenArenaError

__all__ = ["LOCK_DEADLINE", "MIN_LOCK_WAIT_MS", "Database", "DatabaseUnavailable", "database_url", "is_database_url", "lock_budget", "migrate", "open_database",
           "pg_pipeline", "redact", "vote_synchronous"]

ENV_URL = "OPENARENA_DATABASE_URL"
ENV_DATA_DIR = "OPENARENA_DATA_DIR"
ENV_SYNCHRONOUS = "OPENARENA_SQLITE_SYNCHRONOUS"
ENV_VOTE_SYNC = "OPENARENA_SQLITE_VOTE_SYNCHRONOUS"
DEFAULT_DATA_DIR = "arena-data"
DB_FILE = "openarena.db"
MIGRATIONS = Path(__file__).with_name("migrations")

_URL_PREFIXES = ("sqlite:", "postgresql:", "postgresql+", "postgres:")


class StorageError(OpenArenaError):
    """The database cannot be opened or migrated (bad URL, server unreachable, missing driver)."""


class DatabaseUnavailable(StorageError):
    """A write could not be done now (lock not obtained in time, file deleted or replaced):
    nothing of it is stored (or what was written went to a deleted file)."""


def is_database_url(text: str) -> bool:
    """True if ``text`` looks like a database URL we accept (sqlite:, postgresql:, postgres:)."""
    return isinstance(text, str) and text.startswith(_URL_PREFIXES)


def _normalise(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def database_url(url: str | None = None, data_dir: str | os.PathLike[str] | None = None, *, create: bool = True) -> str:
    """The database URL to use (see the module docstring for the order).

    Returns: a SQLAlchemy URL string; for the SQLite default the data folder is created (unless
    ``create`` is False).
    Raises: StorageError for a URL of an unsupported kind, or a data folder that is a file or
    cannot be created.
    """
    chosen = url or os.environ.get(ENV_URL, "").strip() or None
    if chosen:
        if not is_database_url(chosen):
            raise StorageError(f"unsupported database URL {redact(chosen)!r}; expected sqlite:///PATH or postgresql://USER@HOST/DB")
        return _normalise(chosen)
    folder = Path(data_dir or os.environ.get(ENV_DATA_DIR, "") or DEFAULT_DATA_DIR).expanduser()
    if create:
        _make_folder(folder, "data folder")
    return f"sqlite:///{(folder / DB_FILE).resolve()}"


def _make_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and its parents). Raises: StorageError, one line, when it is a file or
    cannot be created (permissions, read-only file system, a file in the path)."""
    if folder.exists() and not folder.is_dir():
        raise StorageError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the {what} {folder}: {e.strerror or type(e).__name__}") from None


def _sqlite_file(url) -> Path | None:
    """The file of a SQLite URL (None for in-memory databases and ``file:`` URIs)."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database)


def _driver_error(url, e: DatabaseError, doing: str) -> StorageError:
    """One line for a driver error: a file that is not a SQLite database is named as such."""
    first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
    path = _sqlite_file(url) if url.get_backend_name() == "sqlite" else None
    if path is not None and "not a database" in first:
        return StorageError(f"{path}: not a SQLite database ({first})")
    return StorageError(f"cannot {doing} {redact(str(url))}: {first}")


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and provenance)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1]


def _synchronous() -> str:
    sync = os.environ.get(ENV_SYNCHRONOUS, "NORMAL").upper()
    return sync if sync in ("NORMAL", "FULL", "EXTRA") else "NORMAL"


def vote_synchronous() -> str:
    """The SQLite ``synchronous`` level votes are committed with (:meth:`Database.write`
    ``durable=True``): FULL (the WAL is fsynced at commit: an acknowledged vote survives a killed
    process and a power loss) unless ``OPENARENA_SQLITE_VOTE_SYNCHRONOUS=NORMAL``, then the level
    of every other write (``OPENARENA_SQLITE_SYNCHRONOUS``, default NORMAL: survives a killed
    process, not a power loss)."""
    return "FULL" if os.environ.get(ENV_VOTE_SYNC, "FULL").upper() == "FULL" else _synchronous()


_TEXT_FACTORY = functools.partial(str, encoding="utf-8", errors="replace")


def _sqlite_pragmas(dbapi_conn, _record, busy_ms: int = 30_000) -> None:  # pragma: no cover - trivial
    # pysqlite must not BEGIN by itself: SQLAlchemy's "begin" event below does it.
    dbapi_conn.isolation_level = None
    # TEXT that is not valid UTF-8 (written by another program) reads as text with U+FFFD
    # instead of failing the whole query (an export, a leaderboard) on one bad row.
    dbapi_conn.text_factory = _TEXT_FACTORY
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={_synchronous()}")
    # No checkpoint inside a commit (it would stall that writer on fsyncs of the database
    # file): Database runs passive checkpoints in a background thread instead.
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


#: PostgreSQL connections of one server (its pool, kept open, and its overflow, opened at peaks
#: and closed after), however many worker processes share them: PostgreSQL's default
#: max_connections is 100, and several workers each with a pool of their own would pass it (4 x
#: 30 did, in bench/serve_load.py after a restart). Mostly pool: a small pool with a large
#: overflow opens and closes connections all the time under load (each a backend started).
POOL_SIZE, MAX_OVERFLOW = 25, 5


def _engine(url: str, *, pool: bool = True, create: bool = True, lock_timeout_s: float = 30.0, processes: int = 1) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"invalid database URL {redact(url)!r}: {e}") from None
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None and not create:
            if not path.exists():
                raise StorageError(f"{path}: no such database file (a command that only reads never creates one; "
                                   "check --db / --data-dir, or start the arena with openarena serve first)")
            if path.is_dir():
                raise StorageError(f"{path}: is a folder, not a SQLite database file")
        elif path is not None:
            _make_folder(path.parent, "database folder")
        kw = {} if pool else {"poolclass": NullPool}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": lock_timeout_s}, **kw)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=lock_timeout_s * 1000))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        options = parsed.query.get("options")  # keep the URL's own (e.g. -csearch_path=...)
        options = " ".join(options) if isinstance(options, tuple) else (options or "")
        args = {"options": f"{options} -c lock_timeout={int(lock_timeout_s * 1000)}".strip()}
        share = max(1, processes)
        sizes = {"pool_size": max(2, -(-POOL_SIZE // share)), "max_overflow": max(2, -(-MAX_OVERFLOW // share))}
        return (create_engine(url, pool_pre_ping=True, connect_args=args, **sizes) if pool
                else create_engine(url, poolclass=NullPool, connect_args=args))
    except ModuleNotFoundError as e:
        raise StorageError(f"no driver for {redact(url)!r} ({e.name} is not installed); pip install 'psycopg[binary]'") from None


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database to ``revision`` (default: the latest).

    Runs the Alembic revisions of ``openarena/storage/migrations`` in one transaction (on
    SQLite and PostgreSQL, DDL is transactional). Idempotent.
    Raises: StorageError if the database cannot be reached.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except DatabaseError as e:  # OperationalError (unreachable, locked...) or not a database at all
        raise _driver_error(engine.url, e, "migrate") from None


class _RollBack(Exception):
    """Leaves a write transaction by rolling it back (:meth:`Database.health`)."""


class Database:
    """An engine plus the way this project uses it.

    Use :meth:`read` for reads and :meth:`write` for writes (on SQLite the latter starts with
    ``BEGIN IMMEDIATE``); both are context managers that commit on success and roll back on an
    exception. Thread-safe: every call takes a pooled connection.

    Attributes: url (SQLAlchemy URL string), engine, backend ('sqlite' or 'postgresql').
    """

    def __init__(self, engine: Engine, *, checkpoints: bool = True, lock_timeout_s: float = 30.0) -> None:
        self.engine = engine
        self.lock_timeout_s = lock_timeout_s
        self._file = _sqlite_file(engine.url) if engine.url.get_backend_name() == "sqlite" else None
        self._file_id: tuple[int, int] | None = None
        self.url = engine.url.render_as_string(hide_password=False)
        self.backend = engine.url.get_backend_name()
        # SQLite has one writer at a time; threads of this process queue on this lock instead
        # of on SQLite's busy handler, which sleeps in steps of up to 100 ms.
        self._write_lock = threading.Lock() if self.backend == "sqlite" else None
        self._checkpointer: threading.Thread | None = None
        self._closed = threading.Event()
        if self.backend == "sqlite" and checkpoints:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
            self._checkpointer.start()

    def _checkpoint_loop(self, every_s: float = 1.0) -> None:
        """Passive WAL checkpoints once a second (copy committed pages into the database file
        without blocking readers or the writer), so the WAL stays small."""
        while not self._closed.wait(every_s):
            try:
                with self.engine.connect() as conn:
                    conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # noqa: BLE001 - next round
                pass

    @classmethod
    def open(cls, url: str | None = None, data_dir: str | os.PathLike[str] | None = None, *, run_migrations: bool = True, pool: bool = True,
             checkpoints: bool = True, create: bool | None = None, lock_timeout_s: float = 30.0, processes: int = 1) -> "Database":
        """Connect to the database of :func:`database_url` and (by default) migrate it.
        ``checkpoints=False``: no background checkpoint thread (a reader process; the server's
        own Database checkpoints). ``create``: may a missing SQLite file (and its folder) be
        created? Default: when migrating (``run_migrations``); readers that do not migrate
        need an existing database. ``lock_timeout_s``: longest wait for the write lock.
        ``processes``: how many processes (the server's workers) share one budget of PostgreSQL
        connections (:data:`POOL_SIZE` + :data:`MAX_OVERFLOW`): each opens at most its share
        (at least 2 + 2); a request that finds the pool empty waits for a connection.

        Raises: StorageError (bad URL, unreachable server, missing driver, a SQLite file that
        does not exist with ``create=False`` or is not a database).
        """
        create = run_migrations if create is None else create
        engine = _engine(database_url(url, data_dir, create=create), pool=pool, create=create, lock_timeout_s=lock_timeout_s, processes=processes)
        db = cls(engine, checkpoints=checkpoints, lock_timeout_s=lock_timeout_s)
        try:
            if run_migrations:
                migrate(db.engine)
            else:
                db.check()
            db._remember_file()
        except BaseException:
            db.dispose()
            raise
        return db

    def check(self) -> None:
        """Raise StorageError unless the database is reachable, has our tables and is at this
        version's schema (a reader never migrates: an older arena database is named, not read
        with missing columns)."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from sqlalchemy import text

        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("votes"):
                    raise StorageError(f"{self.describe()} has no arena tables; run `openarena serve` once or migrate it")
                current = conn.execute(text("select version_num from alembic_version")).scalar() if inspect(conn).has_table("alembic_version") else None
        except DatabaseError as e:  # OperationalError (unreachable, locked...) or not a database at all
            raise _driver_error(self.engine.url, e, "open") from None
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        if current != head:
            raise StorageError(f"{self.describe()} is at schema version {current}, this openarena reads {head}: "
                               "start `openarena serve` on it once to migrate it")

    def _remember_file(self) -> None:
        """Note the identity (device, inode) of the SQLite file, to notice later when it is gone."""
        if self._file is not None:
            try:
                st = os.stat(self._file)
            except OSError:
                return
            self._file_id = (st.st_dev, st.st_ino)

    def _check_file(self) -> None:
        """Raise DatabaseUnavailable when the SQLite file this process writes to was deleted or
        replaced since it was opened (its connections would write to the unlinked file)."""
        if self._file_id is None:
            return
        try:
            st = os.stat(self._file)
        except OSError:
            raise DatabaseUnavailable(f"the database file {self._file} is gone (deleted, or its folder removed)") from None
        if (st.st_dev, st.st_ino) != self._file_id:
            raise DatabaseUnavailable(f"the database file {self._file} was replaced by another file")

    def health(self) -> str | None:
        """None when the database can be written now, else why not (one line, for the logs).

        SQLite: the file is still the one opened, and a write transaction (``BEGIN IMMEDIATE``,
        a header write, ``ROLLBACK``: nothing is stored) succeeds within ``lock_timeout_s``
        (a read-only file or a lock held elsewhere fail it). PostgreSQL: the server answers and
        its transactions are not read-only. Never raises.
        """
        try:
            if self.backend == "sqlite":
                try:
                    with self.write() as conn:  # file identity, lock, BEGIN IMMEDIATE
                        version = conn.exec_driver_sql("PRAGMA user_version").scalar()
                        conn.exec_driver_sql(f"PRAGMA user_version={int(version)}")  # a real write...
                        raise _RollBack()  # ...rolled back
                except _RollBack:
                    pass
            else:
                with self.engine.connect() as conn:
                    if conn.exec_driver_sql("SELECT current_setting('transaction_read_only')").scalar() == "on":
                        return "the database accepts no writes (read-only transactions)"
        except Exception as e:  # noqa: BLE001 - reported, not raised
            first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
            return f"{type(e).__name__}: {first}"
        return None

    def describe(self) -> str:
        """The URL without its password."""
        return redact(self.url)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a (deferred) transaction, for reads."""
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self, durable: bool = False) -> Iterator[Connection]:
        """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite, one writer thread
        of this process at a time).

        ``durable``: on SQLite, commit with ``synchronous=FULL`` (the WAL is fsynced before the
        commit returns), so the transaction also survives a power loss; used for votes. Other
        writes use the connection's default (``NORMAL``: safe against a killed process, the last
        commits may be lost if the machine itself goes down). PostgreSQL always syncs commits.
        """
        lock = self._write_lock
        if lock is not None and not lock.acquire(timeout=self.lock_timeout_s):
            raise DatabaseUnavailable(f"the database's write lock was not free within {self.lock_timeout_s:g} s")
        try:
            self._check_file()
            with self._write_tx(durable) as conn:
                yield conn
            self._check_file()  # committed to a file that is gone = not stored: say so
        finally:
            if lock is not None:
                lock.release()

    @contextlib.contextmanager
    def _write_tx(self, durable: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            full = durable and self.backend == "sqlite" and _synchronous() != "FULL" and vote_synchronous() == "FULL"
            if self.backend == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                if full:  # on the DBAPI connection: outside any transaction (autocommit)
                    conn.connection.dbapi_connection.execute("PRAGMA synchronous=FULL")
            try:
                with conn.begin():
                    yield conn
            finally:
                if full:
                    conn.connection.dbapi_connection.execute(f"PRAGMA synchronous={_synchronous()}")

    def dispose(self) -> None:
        """Stop the checkpoint thread and close every pooled connection."""
        self._closed.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
            self._checkpointer = None
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.describe()})"


@contextlib.contextmanager
def pg_pipeline(conn: Connection, *, begin: bool = False, budget: bool = True) -> Iterator[Any]:
    """The driver's connection under ``conn`` (a SQLAlchemy Connection on PostgreSQL, its
    transaction left as it is), in pipeline mode: the statements executed inside are sent
    together and answered in one round trip when the block ends, instead of one round trip
    each. Take one ``raw.cursor()`` per statement whose result is read, and read it after the
    block (a fetch inside the block costs one more round trip). The BEGIN of a new transaction
    is still a round trip of its own (psycopg syncs the pipeline after it). For short
    transactions that hold locks (a vote batch holds its battles' rows and its voters'
    advisory locks until the commit), the round trips are most of the time spent. Statements
    take the driver's ``%s`` / ``%(name)s`` placeholders; each still runs alone, in order, with
    its own snapshot (READ COMMITTED).

    ``begin``: first send ``BEGIN``, for a connection in autocommit mode whose caller runs the
    transaction with statements (``BEGIN`` ... ``COMMIT``): the transaction then starts in the
    pipeline's round trip (psycopg's own BEGIN, on a connection not in autocommit mode, is a
    round trip of its own). With ``conn.info[LOCK_DEADLINE]`` set and ``budget`` (the default),
    the pipeline then bounds the transaction's lock waits to what is left before that deadline
    (:func:`lock_budget`). Without pipeline support
    (psycopg 2, or a libpq older than 14) the statements are sent one after the other.

    Raises: the driver's errors as SQLAlchemy's (IntegrityError, OperationalError, ...), like
    those of ``conn.execute``; when the connection was lost (or the pipeline could not be left),
    ``connection_invalidated`` is set and ``conn`` is invalidated (the pool discards it).
    Source: psycopg 3 "Pipeline mode support"; libpq "Pipeline Mode" (PostgreSQL 14).
    """
    from sqlalchemy.exc import DBAPIError

    raw = conn.connection.driver_connection
    dbapi = conn.dialect.loaded_dbapi
    try:
        with raw.pipeline() if _pipeline_supported(raw) else contextlib.nullcontext():
            if begin:
                raw.cursor().execute("BEGIN")
            if budget:
                lock_budget(conn, raw)
            yield raw
    except dbapi.Error as e:
        first = e  # leaving a pipeline on a lost connection raises again: the cause is the first error
        while isinstance(first.__context__, dbapi.Error):
            first = first.__context__
        code = str(getattr(first, "sqlstate", None) or "")
        lost = bool(
            getattr(raw, "closed", False) or getattr(raw, "broken", False)
            or code[:2] in ("08", "57")  # connection exception; operator intervention (terminated, shutdown)
            or first is not e  # the pipeline could not even be left: the connection is unusable
            or conn.dialect.is_disconnect(first, raw, None)
        )
        if lost:  # thrown away, not reset (a reset of a connection left in pipeline mode fails again)
            conn.invalidate(first)
        raise DBAPIError.instance(None, None, first, dbapi.Error, connection_invalidated=lost) from first


#: the least a transaction with a lock deadline waits for a lock (ms), however late it is
MIN_LOCK_WAIT_MS = 100
#: key of ``Connection.info``: time.time() by which the transaction's lock waits must end
LOCK_DEADLINE = "openarena_lock_deadline"


def lock_budget(conn: Connection, raw: Any) -> None:
    """With a lock deadline set on ``conn`` (``conn.info[LOCK_DEADLINE]``, Unix seconds), send
    (on ``raw``, the driver's connection, e.g. inside :func:`pg_pipeline`) the statement that sets
    the transaction's ``lock_timeout`` to what is left of it when the server runs it (at least
    :data:`MIN_LOCK_WAIT_MS`). PostgreSQL's lock_timeout bounds each wait; sending this before
    each statement that may wait bounds their sum. :func:`pg_pipeline` sends it first."""
    deadline = conn.info.get(LOCK_DEADLINE)
    if deadline is not None:
        raw.cursor().execute(
            "SELECT set_config('lock_timeout', greatest(%s, ceil((%s - extract(epoch from clock_timestamp())) * 1000))::bigint || 'ms', true)",
            (MIN_LOCK_WAIT_MS, float(deadline)),
        )


def _pipeline_supported(raw: Any) -> bool:
    """Whether ``raw`` (a driver's connection) has pipeline mode: psycopg 3 on libpq 14+."""
    if type(raw).__module__.split(".")[0] != "psycopg":
        return False
    import psycopg

    return isinstance(raw, psycopg.Connection) and _libpq_pipeline()


@functools.cache
def _libpq_pipeline() -> bool:
    import psycopg

    return psycopg.Pipeline.is_supported()


def open_database(url: str | None = None, data_dir: str | os.PathLike[str] | None = None, **kw) -> Database:
    """Shorthand for :meth:`Database.open`."""
    return Database.open(url, data_dir, **kw)
