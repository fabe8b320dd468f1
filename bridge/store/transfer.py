"""`kyc-bridge migrate-store`: copy a bridge store (SQLite or MariaDB/MySQL) into PostgreSQL.

How it works, table by table in foreign-key order (parents first, from the models' metadata, so
tables and columns added later are copied without changes here):

* The source is read in one snapshot (a REPEATABLE READ transaction; a deferred read transaction
  on SQLite), in primary-key order, in batches of `batch_size` rows (keyset pagination, never
  OFFSET): memory holds one batch whatever the size of the store.
* Each batch is a key range `(previous last key, this last key]`. Its digest is the SHA-256 of
  the canonical form of its rows: the values as the models read them (int, str, bool, None, and
  aware UTC datetimes with microseconds), `repr`'d in column order.
* A range the target does not hold yet is written with COPY; a range the target already holds is
  read there and compared by digest: equal ranges are skipped, otherwise the rows that differ are
  upserted and the target's extra rows are deleted (after all tables, children first). Each range
  is one target transaction, so a kill -9 loses at most the range in flight and a new run skips
  what is already there: resuming and an incremental run on a live source are the same run.
* Then sequences are set past the largest id, and every range is verified: the target's rows are
  read again and their count and digest compared with the source's (same snapshot). A difference
  names the table and its first differing key.

Timestamps: the bridge stores naive UTC everywhere (DATETIME(6) on MariaDB, `timestamp without time
zone` on PostgreSQL, text on SQLite); neither column type depends on a session time zone, and values
are copied as UTC without conversion. MariaDB is always read as utf8mb4.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

import sqlalchemy as sa
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from bridge.store import migrate
from bridge.store.engine import normalize_url
from bridge.store.models import Base

AUDIT_LOG = "kyc_audit_log"
AUDIT_HEAD = "kyc_audit_head"
TARGET_MARK = "kyc-bridge migrate-store target"  # COMMENT ON TABLE kyc_audit_log: a target we filled
# Test hook: SIGKILL this process in the middle of the Nth range written (rows sent, not committed).
KILL_HOOK = "BRIDGE_MIGRATE_TEST_KILL_AT_RANGE"

Key = tuple[Any, ...]


class Refusal(Exception):
    """The run cannot start; the message is one line saying why (exit status 2)."""


@dataclass
class Range:
    low: Key | None  # exclusive; None: from the first key
    high: Key  # inclusive
    rows: int
    digest: bytes


@dataclass
class TableResult:
    name: str
    source_rows: int = 0
    written: int = 0  # rows copied or upserted
    deleted: int = 0
    copy_seconds: float = 0.0
    verify_seconds: float = 0.0


@dataclass
class Result:
    tables: list[TableResult] = field(default_factory=list)
    difference: str | None = None  # first difference found by the verification, None: identical
    chain: str = ""  # the target's audit chain verdict
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return self.difference is None


def bridge_tables() -> list[sa.Table]:
    """Every table of the models, parents before children."""
    return list(Base.metadata.sorted_tables)


# ---------------------------------------------------------------------------------------------
# Connections


def source_engine(url: str) -> Engine:
    """A reader for one consistent snapshot of the source."""
    parsed = make_url(normalize_url(url))
    backend = parsed.get_backend_name()
    if backend in ("mysql", "mariadb"):
        # utf8mb4 whatever the URL or the server default say: utf8/latin1 would mangle emoji.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        return sa.create_engine(parsed, isolation_level="REPEATABLE READ", poolclass=sa.NullPool)
    if backend == "sqlite":
        engine = sa.create_engine(parsed, poolclass=sa.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # we say BEGIN ourselves: a deferred read snapshot

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN")
        return engine
    return sa.create_engine(parsed, isolation_level="REPEATABLE READ", poolclass=sa.NullPool)


def target_engine(url: str) -> Engine:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "postgresql":
        raise Refusal(f"the target must be PostgreSQL (postgresql://…), not {parsed.get_backend_name()}")
    return sa.create_engine(parsed, isolation_level="READ COMMITTED", poolclass=sa.NullPool)


# ---------------------------------------------------------------------------------------------
# Keyset reads


def _key_columns(table: sa.Table) -> list[sa.Column]:
    return list(table.primary_key.columns)


def _ordered(column: sa.Column, dialect: str) -> sa.ColumnElement:
    """String keys compare by code point on every side (MariaDB's default collation ignores case,
    PostgreSQL's follows the locale): ranges must hold the same rows on both."""
    if not isinstance(column.type, sa.String):
        return column
    collation = {"mysql": "utf8mb4_bin", "mariadb": "utf8mb4_bin", "postgresql": "C"}.get(dialect)
    return column.collate(collation) if collation else column


class Reader:
    """Rows of one table in key order, typed by the models (same Python values on every backend)."""

    def __init__(self, table: sa.Table, dialect: str):
        self.table = table
        self.columns = list(table.columns)
        keys = [_ordered(c, dialect) for c in _key_columns(table)]
        self.key_positions = [self.columns.index(c) for c in _key_columns(table)]
        key = keys[0] if len(keys) == 1 else sa.tuple_(*keys)
        self._lows = [sa.bindparam(f"low_{i}") for i in range(len(keys))]
        self._highs = [sa.bindparam(f"high_{i}") for i in range(len(keys))]
        low = self._lows[0] if len(keys) == 1 else sa.tuple_(*self._lows)
        high = self._highs[0] if len(keys) == 1 else sa.tuple_(*self._highs)
        base = sa.select(*self.columns).order_by(*keys)
        limit = sa.bindparam("limit", type_=sa.Integer)
        self._first = base.limit(limit)
        self._after = base.where(key > low).limit(limit)
        self._upto = base.where(key <= high)
        self._between = base.where(key > low, key <= high)
        self._keys_after = sa.select(*_key_columns(table)).where(key > low).order_by(*keys).limit(limit)
        self._keys_first = sa.select(*_key_columns(table)).order_by(*keys).limit(limit)

    def key(self, row: Sequence[Any]) -> Key:
        return tuple(row[i] for i in self.key_positions)

    def _params(self, low: Key | None, high: Key | None = None, **extra: Any) -> dict[str, Any]:
        params = dict(extra)
        for bounds, values in ((self._lows, low), (self._highs, high)):
            if values is not None:
                params.update({p.key: v for p, v in zip(bounds, values)})
        return params

    def batch(self, conn: Connection, low: Key | None, limit: int) -> list[tuple[Any, ...]]:
        stmt = self._first if low is None else self._after
        return [tuple(r) for r in conn.execute(stmt, self._params(low, limit=limit))]

    def range(self, conn: Connection, low: Key | None, high: Key) -> list[tuple[Any, ...]]:
        stmt = self._upto if low is None else self._between
        return [tuple(r) for r in conn.execute(stmt, self._params(low, high))]

    def keys_after(self, conn: Connection, low: Key | None, limit: int) -> list[Key]:
        stmt = self._keys_first if low is None else self._keys_after
        return [tuple(r) for r in conn.execute(stmt, self._params(low, limit=limit))]


def canonical(row: Sequence[Any]) -> bytes:
    """The row's canonical form: repr of its typed values (unambiguous, exact: microseconds, zone,
    every code point)."""
    return repr(row).encode("utf-8", "surrogatepass")


def digest(rows: Iterable[Sequence[Any]]) -> bytes:
    h = hashlib.sha256()
    for row in rows:
        h.update(canonical(row))
    return h.digest()


# ---------------------------------------------------------------------------------------------
# Writes


def _copy_value(column: sa.Column) -> Callable[[Any], Any] | None:
    if isinstance(column.type, sa.JSON):
        return lambda v: None if v is None else json.dumps(v)
    python_type = getattr(column.type, "python_type", None) if not isinstance(column.type, sa.TypeDecorator) \
        else getattr(column.type.impl, "python_type", None)
    if python_type is datetime:
        # Naive UTC into `timestamp without time zone`, as the bridge itself writes it.
        return lambda v: v if v is None or v.tzinfo is None else v.astimezone(timezone.utc).replace(tzinfo=None)
    return None


class Writer:
    """COPY for new ranges, upserts for changed rows, deletes for rows the source no longer has."""

    def __init__(self, table: sa.Table):
        self.table = table
        names = ", ".join(f'"{c.name}"' for c in table.columns)
        self._copy_sql = f'COPY "{table.name}" ({names}) FROM STDIN'
        self._convert = [(i, f) for i, c in enumerate(table.columns) if (f := _copy_value(c)) is not None]
        keys = _key_columns(table)
        insert = postgresql.insert(table)
        others = {c.name: insert.excluded[c.name] for c in table.columns if c not in keys}
        self._upsert = insert.on_conflict_do_update(index_elements=keys, set_=others) if others \
            else insert.on_conflict_do_nothing(index_elements=keys)
        self._names = [c.name for c in table.columns]
        self._keys = keys

    def copy(self, conn: Connection, rows: list[tuple[Any, ...]], *, kill_hook: bool = False) -> None:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(self._copy_sql) as copy:
            for row in rows:
                if self._convert:
                    values = list(row)
                    for i, convert in self._convert:
                        values[i] = convert(values[i])
                    copy.write_row(values)
                else:
                    copy.write_row(row)
            if kill_hook:
                os.kill(os.getpid(), signal.SIGKILL)

    def upsert(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        conn.execute(self._upsert, [dict(zip(self._names, row)) for row in rows])

    def delete(self, conn: Connection, keys: list[Key]) -> None:
        if len(self._keys) == 1:
            conn.execute(sa.delete(self.table).where(self._keys[0].in_([k[0] for k in keys])))
        else:
            conn.execute(sa.delete(self.table).where(sa.tuple_(*self._keys).in_(keys)))

    def reset_sequence(self, conn: Connection) -> None:
        column = self.table.autoincrement_column
        if column is None:
            return
        conn.execute(sa.text(
            f'SELECT setval(pg_get_serial_sequence(:table, :column), '
            f'COALESCE((SELECT MAX("{column.name}") FROM "{self.table.name}"), 0) + 1, false)'),
            {"table": self.table.name, "column": column.name})


# ---------------------------------------------------------------------------------------------
# Progress on stderr


class Progress:
    """One line per table and phase: rows, rows/s, ETA; redrawn as a bar on a terminal, a line
    every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = 0.1 if self.tty else interval

    def start(self, phase: str, table: str, total: int) -> None:
        self.phase, self.table, self.total, self.done = phase, table, total, 0
        self.began = self.last = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._draw(final=False)

    def finish(self) -> None:
        self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        elapsed = max(time.monotonic() - self.began, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = f"ETA {left / rate:.0f} s" if rate > 0 and not final else f"{elapsed:.1f} s"
        text = f"{self.phase} {self.table}: {self.done:,}/{self.total:,} rows, {rate:,.0f} rows/s, {eta}"
        if self.tty:
            width = 24
            filled = width if not self.total else min(width, width * self.done // self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\033[K" + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------
# Schema and ownership checks


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _chain_start(conn: Connection, inspector: sa.Inspector) -> tuple[str | None, int]:
    """(hash of audit entry 1, head seq): entry 1's hash covers its time, so it names a bridge."""
    if not inspector.has_table(AUDIT_LOG):
        return None, 0
    first = conn.execute(sa.text(f"SELECT hash FROM {AUDIT_LOG} WHERE seq = 1")).scalar()
    last = conn.execute(sa.text(f"SELECT COALESCE(MAX(seq), 0) FROM {AUDIT_LOG}")).scalar()
    return first, int(last or 0)


def _holds_rows(conn: Connection, inspector: sa.Inspector) -> bool:
    """Rows a fresh `db upgrade` does not put there: any row in a table with generated ids."""
    for table in bridge_tables():
        if table.autoincrement_column is not None and inspector.has_table(table.name):
            if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                return True
    return False


def _marked(conn: Connection) -> bool:
    comment = conn.execute(sa.text("SELECT obj_description(to_regclass(:t), 'pg_class')"), {"t": AUDIT_LOG}).scalar()
    return comment == TARGET_MARK


def check_and_prepare(source: Connection, target: Engine, target_url: str, *, verify_only: bool) -> str:
    """Refuse (Refusal) unless the source is at head and the target is empty or holds this source's
    copy; bring the target to the source's revision. Returns the revision."""
    revision = _revision(source)
    heads = migrate.current_heads(target_url)
    if revision is None:
        raise Refusal("the source has no bridge schema (no Alembic revision): check BRIDGE_DATABASE_URL")
    if revision not in heads:
        raise Refusal(f"the source is at revision {revision}, not at head {', '.join(heads)}: "
                      "run `kyc-bridge db upgrade` on the source first")
    source_start, source_last = _chain_start(source, sa.inspect(source))
    with target.connect() as conn:
        target_revision = _revision(conn)
        inspector = sa.inspect(conn)
        target_start, target_last = _chain_start(conn, inspector)
        if target_start is not None and target_start != source_start:
            raise Refusal("the target holds another bridge's data (its audit chain starts with a different entry)")
        if target_last > source_last:
            raise Refusal(f"the target's audit chain is ahead of the source's ({target_last} > {source_last} "
                          "entries): a bridge has run on the target since the copy")
        if target_start is None and target_revision is not None and not _marked(conn) \
                and _holds_rows(conn, inspector):
            raise Refusal("the target holds bridge data that migrate-store did not copy")
    if verify_only:
        if target_revision != revision:
            raise Refusal(f"the target is at revision {target_revision}, the source at {revision}: "
                          "run migrate-store without --verify-only first")
        return revision
    if target_revision != revision:
        try:
            migrate.upgrade(target_url, revision)
        except Exception as exc:  # an unknown (newer) revision on the target, a permission error
            raise Refusal(f"cannot bring the target to revision {revision}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    with target.begin() as conn:
        conn.execute(sa.text(f"COMMENT ON TABLE {AUDIT_LOG} IS '{TARGET_MARK}'"))
    return revision


# ---------------------------------------------------------------------------------------------
# The run


def _describe(key: Key) -> str:
    return ", ".join(str(k) for k in key) if len(key) > 1 else str(key[0])


class TableTransfer:
    def __init__(self, table: sa.Table, source_dialect: str, batch_size: int, progress: Progress):
        self.table = table
        self.source_reader = Reader(table, source_dialect)
        self.target_reader = Reader(table, "postgresql")
        self.writer = Writer(table)
        self.batch_size = batch_size
        self.progress = progress
        self.ranges: list[Range] = []
        self.deletions: list[Key] = []
        self.result = TableResult(table.name)

    def _count(self, conn: Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar() or 0)

    def scan(self, source: Connection, target: Engine | None, kill_at: list[int]) -> None:
        """Read the source range by range, writing what the target lacks (target None: read only)."""
        began = time.monotonic()
        self.progress.start("copy" if target is not None else "read", self.table.name, self._count(source))
        # The target holds nothing after its largest key: ranges beyond it are copied without a look.
        target_max: Key | None = None
        if target is not None:
            with target.connect() as conn:
                keys = _key_columns(self.table)
                ordered = [_ordered(c, "postgresql").desc() for c in keys]
                top = conn.execute(sa.select(*keys).order_by(*ordered).limit(1)).first()
                target_max = tuple(top) if top is not None else None
        low: Key | None = None
        while True:
            rows = self.source_reader.batch(source, low, self.batch_size)
            if not rows:
                break
            high = self.source_reader.key(rows[-1])
            self.ranges.append(Range(low, high, len(rows), digest(rows)))
            if target is not None:
                beyond = target_max is None or (low is not None and _after(low, target_max))
                self._write_range(target, low, high, rows, fresh=beyond, kill_at=kill_at)
            self.result.source_rows += len(rows)
            self.progress.advance(len(rows))
            low = high
        if target is not None:
            with target.connect() as conn:  # rows after the source's last key are gone from the source
                while extra := self.target_reader.keys_after(conn, low, self.batch_size):
                    self.deletions.extend(extra)
                    low = extra[-1]
        self.progress.finish()
        self.result.copy_seconds = time.monotonic() - began

    def _write_range(self, target: Engine, low: Key | None, high: Key, rows: list[tuple[Any, ...]], *,
                     fresh: bool, kill_at: list[int]) -> None:
        with target.begin() as conn:
            existing = [] if fresh else self.target_reader.range(conn, low, high)
            if existing and digest(existing) == self.ranges[-1].digest:
                return
            kill_at[0] -= 1
            if not existing:
                self.writer.copy(conn, rows, kill_hook=kill_at[0] == 0)
                self.result.written += len(rows)
                return
            held = {self.target_reader.key(r): r for r in existing}
            changed = [r for r in rows if held.pop(self.source_reader.key(r), None) != r]
            if changed:
                self.writer.upsert(conn, changed)
                self.result.written += len(changed)
            self.deletions.extend(held)  # applied after all tables, children first

    def apply_deletions(self, target: Engine) -> None:
        with target.begin() as conn:
            for start in range(0, len(self.deletions), 1000):
                self.writer.delete(conn, self.deletions[start:start + 1000])
        self.result.deleted = len(self.deletions)
        self.deletions = []

    def verify(self, source: Connection, target: Engine) -> str | None:
        """Compare the target with the source's ranges; None when identical, else what differs."""
        began = time.monotonic()
        self.progress.start("verify", self.table.name, self.result.source_rows)
        try:
            with target.connect() as conn:
                for r in self.ranges:
                    rows = self.target_reader.range(conn, r.low, r.high)
                    if len(rows) != r.rows or digest(rows) != r.digest:
                        return self._first_difference(source, r, rows)
                    self.progress.advance(len(rows))
                extra = self.target_reader.keys_after(conn, self.ranges[-1].high if self.ranges else None, 1)
                if extra:
                    return f"{self.table.name}: key {_describe(extra[0])} is in the target, not in the source"
            return None
        finally:
            self.progress.finish()
            self.result.verify_seconds = time.monotonic() - began

    def _first_difference(self, source: Connection, r: Range, target_rows: list[tuple[Any, ...]]) -> str:
        source_rows = self.source_reader.range(source, r.low, r.high)
        held = {self.target_reader.key(row): row for row in target_rows}
        for row in source_rows:
            key = self.source_reader.key(row)
            if key not in held:
                return f"{self.table.name}: key {_describe(key)} is missing in the target"
            other = held.pop(key)
            if other != row:
                column = next((c.name for c, a, b in zip(self.table.columns, row, other) if a != b), "?")
                return f"{self.table.name}: key {_describe(key)} differs (column {column})"
        if held:
            return f"{self.table.name}: key {_describe(next(iter(held)))} is in the target, not in the source"
        return f"{self.table.name}: range after key {_describe(r.low) if r.low else 'start'} differs"


def _after(low: Key, target_max: Key) -> bool:
    """Whether keys > low are all beyond the target's largest key (plain Python order: ints, and
    strings compared by code point like the C collation)."""
    try:
        return low >= target_max
    except TypeError:
        return False


def run(source_url: str, target_url: str, *, batch_size: int = 5000, verify_only: bool = False,
        progress: Progress | None = None,
        chain_check: Callable[[Session], tuple[bool, str]] | None = None) -> Result:
    """Copy (unless verify_only) and verify. Raises Refusal before writing anything when the run
    must not happen. `chain_check(session on the target)` → (ok, message): the audit chain check."""
    if batch_size < 1:
        raise Refusal("--batch-size must be at least 1")
    progress = progress or Progress()
    began = time.monotonic()
    target = target_engine(target_url)
    source = source_engine(source_url)
    result = Result()
    kill_at = [int(os.environ.get(KILL_HOOK, "0") or 0)]
    try:
        with source.connect() as source_conn, source_conn.begin():
            check_and_prepare(source_conn, target, target_url, verify_only=verify_only)
            transfers = [TableTransfer(t, source.dialect.name, batch_size, progress) for t in bridge_tables()]
            for transfer in transfers:
                transfer.scan(source_conn, None if verify_only else target, kill_at)
                result.tables.append(transfer.result)
            if not verify_only:
                for transfer in reversed(transfers):  # children first
                    transfer.apply_deletions(target)
                with target.begin() as conn:
                    for transfer in transfers:
                        transfer.writer.reset_sequence(conn)
            for transfer in transfers:
                result.difference = transfer.verify(source_conn, target)
                if result.difference:
                    break
        if result.difference is None and chain_check is not None:
            with Session(target) as session:
                ok, message = chain_check(session)
            result.chain = message
            if not ok:
                result.difference = f"{AUDIT_LOG}: {message}"
    finally:
        source.dispose()
        target.dispose()
    result.seconds = time.monotonic() - began
    return result


def summary(result: Result) -> list[str]:
    lines = [f"{'table':<22} {'rows':>10} {'written':>9} {'deleted':>8} {'copy s':>7} {'rows/s':>9} {'verify s':>8}"]
    for t in result.tables:
        rate = t.source_rows / t.copy_seconds if t.copy_seconds else 0
        lines.append(f"{t.name:<22} {t.source_rows:>10,} {t.written:>9,} {t.deleted:>8,} {t.copy_seconds:>7.2f} "
                     f"{rate:>9,.0f} {t.verify_seconds:>8.2f}")
    total = sum(t.source_rows for t in result.tables)
    lines.append(f"{total:,} rows in {result.seconds:.1f} s ({total / result.seconds if result.seconds else 0:,.0f} rows/s)")
    return lines
