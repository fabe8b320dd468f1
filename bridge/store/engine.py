"""Engine and session set-up per backend (SQLite, MariaDB/MySQL via pymysql, PostgreSQL via psycopg 3)."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


_WRITER_QUEUES: dict[str, "_SQLiteWriterQueue"] = {}
_WRITER_QUEUES_LOCK = threading.Lock()


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the transaction for a transient reason. The message
    names the driver, host and database (never the password) and the error's type (its text may
    carry values)."""

    @classmethod
    def for_engine(cls, engine: Engine | None, exc: DBAPIError) -> StoreUnavailable:
        kind = type(exc.orig).__name__ if exc.orig else "database error"
        return cls(f"{kind} on {describe_url(engine.url)}" if engine is not None else kind)


def describe_url(url: str | URL) -> str:
    """Where a URL points, for messages: driver, host and database, no user or password."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return f"{parsed.drivername} file {parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    if parsed.port:
        host = f"[{host}]:{parsed.port}" if ":" in host else f"{host}:{parsed.port}"
    return f"{parsed.drivername} at {host}, database {parsed.database or '(default)'}"


def normalize_url(url: str) -> str:
    """Pin the drivers we ship: `postgresql://` → psycopg 3, `mysql://`/`mariadb://` → pymysql."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif driver in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{driver}+pymysql")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" hook issue BEGIN IMMEDIATE: a writer takes the lock up front instead
    # of failing to upgrade a read lock half-way (which busy_timeout cannot retry).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before we answer 200 (NORMAL may lose the last commits on power loss).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Checkpoint little and often: the committing writer copies the WAL into the database and syncs
    # it while holding the write lock; 1000 pages (the default) made that a stall of its own.
    cursor.execute("PRAGMA wal_autocheckpoint=100")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    # hide_parameters: a failed statement's message, which ends up in logs, would otherwise carry
    # its values (webhook bodies, emails, names).
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    # READ COMMITTED on both servers: MariaDB's default REPEATABLE READ takes gap locks that make
    # concurrent SKIP LOCKED claims and inserts deadlock-prone.
    # No pre-ping: it costs a round trip per checkout; a connection that died with the server fails
    # its one transaction (503, Persona retries) and the pool replaces it.
    return create_engine(
        url,
        pool_pre_ping=False,
        pool_size=pool_size,
        max_overflow=5,
        pool_recycle=1800,
        isolation_level="READ COMMITTED",
        connect_args=_postgres_options(url) if backend == "postgresql" else {},
        hide_parameters=True,
    )


def _postgres_options(url: str) -> dict[str, str]:
    # psycopg prepares a statement after its fifth use, and PostgreSQL may then keep one generic
    # plan for it. Made while the tables were small, that plan scans them: the known-events lookup
    # grew to 3 ms per webhook batch at 12,000 events. Our statements are cheap to plan; plan each
    # with its values. Added to the URL's own `options`, if any.
    own = make_url(url).query.get("options")
    return {"options": " ".join(filter(None, [own if isinstance(own, str) else None,
                                               "-c plan_cache_mode=force_custom_plan"]))}


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_transient(exc: DBAPIError) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError)) or bool(exc.connection_invalidated)


class _SQLiteWriterQueue:
    """Writers of one SQLite file wait in line on a kernel lock (threads: a mutex; processes:
    flock), instead of SQLite's busy handler, which sleeps and retries with growing pauses."""

    def __init__(self, database: str):
        self._path = database + ".writelock"
        self._pid = -1

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._pid != os.getpid():  # new process (fork): a lock of its own, not the parent's
            with _WRITER_QUEUES_LOCK:
                if self._pid != os.getpid():
                    self._mutex = threading.Lock()
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                    self._pid = os.getpid()
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def _writer_queue(engine: Engine) -> _SQLiteWriterQueue | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    path = os.path.abspath(database)
    with _WRITER_QUEUES_LOCK:  # one queue per file and process, whatever the number of engines
        return _WRITER_QUEUES.setdefault(path, _SQLiteWriterQueue(path))


@contextmanager
def unavailable_on_transient_errors(engine: Engine | None) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_transient(exc):
            raise StoreUnavailable.for_engine(engine, exc) from exc
        raise


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error; unreachable store → StoreUnavailable."""
    engine = sessions.kw.get("bind")
    writer_queue = _writer_queue(engine) if isinstance(engine, Engine) else None
    with unavailable_on_transient_errors(engine if isinstance(engine, Engine) else None), \
            writer_queue.held() if writer_queue else nullcontext(), sessions.begin() as session:
        yield session


@contextmanager
def core_transaction(engine: Engine) -> Iterator[Connection]:
    """`transaction` on a Core connection, for the webhook hot path: no ORM session to set up."""
    writer_queue = _writer_queue(engine)
    with unavailable_on_transient_errors(engine), writer_queue.held() if writer_queue else nullcontext(), \
            engine.begin() as connection:
        yield connection
