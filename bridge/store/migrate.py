"""Run the Alembic migrations (used by `kyc-bridge db upgrade`, `--migrate` and the demo) and tell
whether a database is at the revision this code expects.

The migrations live in the top-level migrations/ of the checkout and ship inside the installed
distribution as the package `bridge.migrations` (pyproject.toml), so Alembic is configured here,
in code: no alembic.ini is needed at run time (alembic.ini stays for developers running `alembic`).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from bridge.store.engine import StoreUnavailable, describe_url, make_engine, unavailable_on_transient_errors

VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps
# How long `db upgrade` waits for another process's migration before giving up.
LOCK_WAIT_SECONDS = 600


class MigrationLockTimeout(RuntimeError):
    pass


def script_location() -> str:
    try:
        return str(resources.files("bridge.migrations"))
    except ModuleNotFoundError:  # a checkout on sys.path that was never pip-installed
        return str(Path(__file__).resolve().parents[2] / "migrations")


def alembic_config(database_url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    # ConfigParser interpolation: a literal % in the path must be doubled.
    cfg.set_main_option("script_location", script_location().replace("%", "%%"))
    cfg.attributes["database_url"] = database_url
    return cfg


def _lock_name(engine: Engine) -> str:
    # MariaDB's GET_LOCK names are server-wide: name the database so two bridges on one server do
    # not wait for each other. PostgreSQL's advisory locks are per database already.
    return f"kyc-bridge-migrate:{engine.url.database}"[:64]


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def migration_lock(engine: Engine, wait_seconds: int = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Held by one migrating process at a time per database (PostgreSQL advisory lock, MariaDB/MySQL
    GET_LOCK), on a connection of its own in autocommit so no transaction stays open while waiting.

    SQLite: an flock on a file beside the database. SQLite's own write lock is not enough: its DDL
    counts as non-transactional for Alembic, which then commits after each revision, so a second
    migrator could slip in between two revisions of the first, and both would run the rest."""
    backend = engine.dialect.name
    if backend == "sqlite":
        with _sqlite_migration_lock(engine.url.database):
            yield
        return
    if backend not in ("postgresql", "mysql", "mariadb"):
        yield
        return
    name = _lock_name(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if backend == "postgresql":
            conn.execute(text(f"SET lock_timeout = '{int(wait_seconds)}s'"))
            try:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _advisory_key(name)})
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                raise MigrationLockTimeout(f"another process has been migrating {describe_url(engine.url)} "
                                           f"for more than {wait_seconds} s") from None
            unlock, params = "SELECT pg_advisory_unlock(:key)", {"key": _advisory_key(name)}
        else:
            granted = conn.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": wait_seconds}).scalar()
            if granted != 1:
                raise MigrationLockTimeout(f"another process has been migrating {describe_url(engine.url)} "
                                           f"for more than {wait_seconds} s")
            unlock, params = "SELECT RELEASE_LOCK(:name)", {"name": name}
        try:
            yield
        finally:
            conn.execute(text(unlock), params)


@contextmanager
def _sqlite_migration_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":  # one connection, one process: nobody to wait for
        yield
        return
    fd = os.open(os.path.abspath(database) + ".migratelock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies
        yield
    finally:
        os.close(fd)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to `revision`; concurrent callers on one database run one after the other (the later
    ones find nothing left to do)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with unavailable_on_transient_errors(engine), migration_lock(engine):
            command.upgrade(alembic_config(database_url), revision)
    finally:
        engine.dispose()


def downgrade(database_url: str, revision: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        with migration_lock(engine):
            command.downgrade(alembic_config(database_url), revision)
    finally:
        engine.dispose()


@functools.cache
def _expected_heads() -> tuple[str, ...]:
    return tuple(sorted(ScriptDirectory.from_config(alembic_config("")).get_heads()))


def current_heads(database_url: str) -> list[str]:
    """The revision(s) this code expects a database to be at."""
    return list(_expected_heads())


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]
    expected: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        return self.current == self.expected

    @property
    def newer(self) -> bool:
        """Migrated by a newer kyc-bridge (a revision this code does not know): a rolling deploy
        under way, or a rollback of the code. Revisions only add, so this code keeps working."""
        known = ScriptDirectory.from_config(alembic_config(""))
        return not self.at_head and not all(_is_known(known, revision) for revision in self.current)

    def _revisions(self) -> tuple[str, str]:
        return ", ".join(self.current) or "none (never migrated)", ", ".join(self.expected)

    @property
    def problem(self) -> str | None:
        """Why this code cannot run on the database (one line for an operator), or None."""
        if self.at_head or self.newer:
            return None
        current, expected = self._revisions()
        return f"database at revision {current}, expected {expected}: run `kyc-bridge db upgrade`"

    @property
    def warning(self) -> str | None:
        if not self.newer:
            return None
        current, expected = self._revisions()
        return f"database at revision {current}, newer than this kyc-bridge (expected {expected}): running anyway"


def _is_known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own ResolutionError family for unknown ids
        return False


def schema_state(connection: Connection) -> SchemaState:
    # Alembic's own version table, read directly: a MigrationContext would log at INFO on every
    # call (start-up must say one line; /readyz runs this per request).
    if not inspect(connection).has_table(VERSION_TABLE):
        return SchemaState((), _expected_heads())
    current = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return SchemaState(tuple(sorted(current)), _expected_heads())


def engine_schema_state(engine: Engine) -> SchemaState:
    """The state of the database behind `engine`; StoreUnavailable when it cannot be reached."""
    try:
        with engine.connect() as connection:
            return schema_state(connection)
    except DBAPIError as exc:
        raise StoreUnavailable.for_engine(engine, exc) from exc


def check(database_url: str) -> SchemaState:
    engine = make_engine(database_url, pool_size=1)
    try:
        return engine_schema_state(engine)
    finally:
        engine.dispose()
