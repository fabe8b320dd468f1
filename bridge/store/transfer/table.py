"""One table's transfer: keyset reads of canonical lines from the source, COPY into the target,
per-range digests, repair of ranges that differ, verification."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex

from bridge.store.transfer import lines
from bridge.store.transfer.progress import Progress

Key = tuple[Any, ...]
PENDING = "migrate-store: unique constraints to restore: "


@dataclass
class Range:
    """Rows with `low < key <= high` (low None: from the first key), their count and digest."""
    low: Key | None
    high: Key
    rows: int
    digest: bytes
    equal: bool = False  # the target held exactly these rows when this run compared them: nothing written


@dataclass
class TableResult:
    name: str
    source_rows: int = 0
    written: int = 0  # rows copied or upserted
    deleted: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "write": 0.0, "index": 0.0,
                                                                "verify": 0.0})


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class SourceTable:
    """Canonical lines of one source table in key order, a batch at a time (keyset, never OFFSET)."""

    def __init__(self, table: sa.Table, dialect: lines.Dialect):
        keys = list(table.primary_key.columns)
        quote = dialect.quote
        order = ", ".join(dialect.key_order(c) for c in keys)
        key = order if len(keys) == 1 else f"({order})"
        low = ":low0" if len(keys) == 1 else "(" + ", ".join(f":low{i}" for i in range(len(keys))) + ")"
        high = ":high0" if len(keys) == 1 else "(" + ", ".join(f":high{i}" for i in range(len(keys))) + ")"
        select = f"SELECT {', '.join(quote(c.name) for c in keys)}, {dialect.line(table)} FROM {quote(table.name)}"
        self.keys = len(keys)
        self._first = sa.text(f"{select} ORDER BY {order} LIMIT :limit")
        self._after = sa.text(f"{select} WHERE {key} > {low} ORDER BY {order} LIMIT :limit")
        self._upto = sa.text(f"{select} WHERE {key} <= {high} ORDER BY {order}")
        self._between = sa.text(f"{select} WHERE {key} > {low} AND {key} <= {high} ORDER BY {order}")
        self._count = sa.text(f"SELECT COUNT(*) FROM {quote(table.name)}")

    def count(self, conn: Connection) -> int:
        return int(conn.execute(self._count).scalar() or 0)

    @staticmethod
    def _params(low: Key | None, high: Key | None = None, **extra: Any) -> dict[str, Any]:
        params = dict(extra)
        params.update({f"low{i}": v for i, v in enumerate(low or ())})
        params.update({f"high{i}": v for i, v in enumerate(high or ())})
        return params

    def _rows(self, conn: Connection, statement: sa.TextClause, params: dict[str, Any]) -> tuple[list[Key], list[bytes]]:
        keys, found = [], []
        k = self.keys
        for row in conn.execute(statement, params):
            keys.append(tuple(row[:k]))
            line = row[k]
            found.append(line if isinstance(line, bytes) else line.encode("utf-8"))
        return keys, found

    def batch(self, conn: Connection, low: Key | None, limit: int) -> tuple[list[Key], list[bytes]]:
        return self._rows(conn, self._first if low is None else self._after, self._params(low, limit=limit))

    def range(self, conn: Connection, low: Key | None, high: Key) -> list[bytes]:
        return self._rows(conn, self._upto if low is None else self._between, self._params(low, high))[1]


class TargetTable:
    """The same table on PostgreSQL, spoken to through psycopg: COPY in and out."""

    def __init__(self, table: sa.Table):
        self.name = table.name
        self.columns = lines.ordered_columns(table)
        self.key_columns = list(table.primary_key.columns)
        self.keys = len(self.key_columns)
        self.autoincrement = table.autoincrement_column
        self._table = sql.Identifier(table.name)
        self._names = sql.SQL(", ").join(sql.Identifier(c.name) for c in self.columns)
        self._key_names = sql.SQL(", ").join(sql.Identifier(c.name) for c in self.key_columns)
        ordered = [sql.SQL('{} COLLATE "C"' if lines.kind(c) == "text" else "{}").format(sql.Identifier(c.name))
                   for c in self.key_columns]
        self._order = sql.SQL(", ").join(ordered)
        self._key = ordered[0] if self.keys == 1 else sql.SQL("({})").format(self._order)
        # The models' secondary indexes (not the key or unique constraints): built once after a
        # first load instead of maintained row by row during it.
        self.indexes = list(table.indexes)
        self._staged = sql.Identifier(f"_migrate_{table.name}")
        self._gone = sql.Identifier(f"_migrate_gone_{table.name}")

    def _bound(self, key: Key) -> sql.Composable:
        literals = [sql.Literal(v) for v in key]
        return literals[0] if self.keys == 1 else sql.SQL("({})").format(sql.SQL(", ").join(literals))

    def _where(self, low: Key | None, high: Key | None) -> sql.Composable:
        parts = []
        if low is not None:
            parts.append(sql.SQL("{} > {}").format(self._key, self._bound(low)))
        if high is not None:
            parts.append(sql.SQL("{} <= {}").format(self._key, self._bound(high)))
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts) if parts else sql.SQL("")

    def max_key(self, cur: psycopg.Cursor) -> Key | None:
        desc = sql.SQL(", ").join(sql.SQL("{} DESC").format(part) for part in
                                  [sql.SQL('{} COLLATE "C"' if lines.kind(c) == "text" else "{}").format(
                                      sql.Identifier(c.name)) for c in self.key_columns])
        cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT 1").format(self._key_names, self._table, desc))
        row = cur.fetchone()
        return tuple(row) if row is not None else None

    def copy_out(self, cur: psycopg.Cursor, low: Key | None, high: Key | None, *, keys_only: bool = False) -> bytes:
        """The target's own COPY text of the rows in (low, high], in key order."""
        query = sql.SQL("COPY (SELECT {} FROM {}{} ORDER BY {}) TO STDOUT").format(
            self._key_names if keys_only else self._names, self._table, self._where(low, high), self._order)
        with cur.copy(query) as copy:
            return b"".join(copy)

    def copy_in(self, cur: psycopg.Cursor, data: bytes, *, kill: bool = False) -> None:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(self._table, self._names)) as copy:
            copy.write(data)
            if kill:  # test hook: die with the range sent and not committed
                os.kill(os.getpid(), signal.SIGKILL)

    def upsert(self, cur: psycopg.Cursor, data: bytes) -> None:
        """Insert or replace rows given as canonical lines, through a temporary table."""
        cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {})").format(self._staged, self._table))
        cur.execute(sql.SQL("TRUNCATE {}").format(self._staged))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(self._staged, self._names)) as copy:
            copy.write(data)
        others = [c for c in self.columns if c not in self.key_columns]
        action = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in others)) if others \
            else sql.SQL("DO NOTHING")
        cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            self._table, self._names, self._names, self._staged, self._key_names, action))

    def delete(self, cur: psycopg.Cursor, key_lines: list[bytes]) -> None:
        cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} AS SELECT {} FROM {} WITH NO DATA").format(
            self._gone, self._key_names, self._table))
        cur.execute(sql.SQL("TRUNCATE {}").format(self._gone))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(self._gone, self._key_names)) as copy:
            copy.write(b"".join(k + b"\n" for k in key_lines))
        match = sql.SQL(" AND ").join(sql.SQL("t.{0} = g.{0}").format(sql.Identifier(c.name)) for c in self.key_columns)
        cur.execute(sql.SQL("DELETE FROM {} AS t USING {} AS g WHERE {}").format(self._table, self._gone, match))

    def drop_indexes(self, cur: psycopg.Cursor) -> None:
        for index in self.indexes:
            cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index.name)))

    def create_indexes(self, cur: psycopg.Cursor) -> None:
        """Every index of the models, as the migrations made it (a test keeps those equal)."""
        for index in self.indexes:
            cur.execute(str(CreateIndex(index, if_not_exists=True).compile(dialect=postgresql.dialect())))

    def _key_constraint(self, cur: psycopg.Cursor) -> str:
        cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
                    (self.name,))
        return cur.fetchone()[0]

    def _pending(self, cur: psycopg.Cursor) -> list[list[str]]:
        """Unique constraints dropped for a first load and not yet restored (kept in a comment on
        the primary key, so a run killed in between leaves the next run what to restore)."""
        cur.execute("SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
                    "WHERE conrelid = to_regclass(%s) AND contype = 'p'", (self.name,))
        row = cur.fetchone()
        comment = row[0] if row else None
        return json.loads(comment[len(PENDING):]) if comment and comment.startswith(PENDING) else []

    def drop_unique_constraints(self, cur: psycopg.Cursor) -> None:
        """Unique constraints cost a random B-tree insert per row during a load; built afterwards
        from sorted data they cost a fraction. Not those a foreign key depends on."""
        cur.execute("SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
                    "WHERE c.conrelid = to_regclass(%s) AND c.contype = 'u' AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)",
                    (self.name,))
        dropped = [list(row) for row in cur.fetchall()] + self._pending(cur)
        if not dropped:
            return
        cur.execute(sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
            sql.Identifier(self._key_constraint(cur)), self._table, sql.Literal(PENDING + json.dumps(dropped))))
        for name, _ in dropped:
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(self._table, sql.Identifier(name)))

    def restore_unique_constraints(self, cur: psycopg.Cursor) -> None:
        pending = self._pending(cur)
        for name, definition in pending:
            cur.execute("SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(%s) AND conname = %s",
                        (self.name, name))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(self._table, sql.Identifier(name))
                            + sql.SQL(definition))
        if pending:
            cur.execute(sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS NULL").format(
                sql.Identifier(self._key_constraint(cur)), self._table))

    def missing_indexes(self, cur: psycopg.Cursor) -> list[str]:
        pending = self._pending(cur)
        if pending:
            return [name for name, _ in pending]
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (self.name,))
        present = {name for (name,) in cur.fetchall()}
        return [index.name for index in self.indexes if index.name not in present]

    def reset_sequence(self, cur: psycopg.Cursor) -> None:
        if self.autoincrement is None:
            return
        column = sql.Identifier(self.autoincrement.name)
        cur.execute(sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), "
                            "COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)").format(column, self._table),
                    (self.name, self.autoincrement.name))


def _split(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1] if data else []


class TableTransfer:
    def __init__(self, table: sa.Table, dialect: lines.Dialect, batch_size: int, progress: Progress):
        self.source = SourceTable(table, dialect)
        self.target = TargetTable(table)
        self.batch_size = batch_size
        self.progress = progress
        self.ranges: list[Range] = []
        self.deletions: list[bytes] = []  # key lines, deleted after all tables are written (children first)
        self.result = TableResult(table.name)

    def _clock(self, phase: str, began: float) -> float:
        now = time.monotonic()
        self.result.seconds[phase] += now - began
        return now

    def scan(self, source: Connection, target: psycopg.Connection | None, kill: list[int]) -> None:
        """Read the source range by range, writing what the target lacks or holds differently
        (target None: only read, for --verify-only)."""
        self.progress.start("copy" if target is not None else "read", self.result.name, self.source.count(source))
        cur = target.cursor() if target is not None else None
        # The target holds nothing after its largest key: ranges beyond it need no look there.
        target_max = self.target.max_key(cur) if cur is not None else None
        if cur is not None and target_max is None and self.progress.total > self.batch_size:
            assert target is not None
            with target.transaction():  # a first load: index once at the end (a kill before that: the next run)
                self.target.drop_indexes(cur)
                self.target.drop_unique_constraints(cur)
        low: Key | None = None
        began = time.monotonic()
        for keys, found in self._batches(source):
            data = b"".join(line + b"\n" for line in found)
            high = keys[-1]
            self.ranges.append(Range(low, high, len(keys), digest(data)))
            began = self._clock("read", began)
            if cur is not None:
                assert target is not None
                fresh = target_max is None or (low is not None and _beyond(low, target_max))
                with target.transaction():
                    self._write_range(cur, low, high, found, data, fresh=fresh, kill=kill)
                self._clock("write", began)
            self.result.source_rows += len(keys)
            self.progress.advance(len(keys))
            low = high
            began = time.monotonic()
        if cur is not None:  # rows after the source's last key are gone from the source
            self.deletions.extend(_split(self.target.copy_out(cur, low, None, keys_only=True)))
            began = time.monotonic()
            with target.transaction():
                self.target.create_indexes(cur)
                self.target.restore_unique_constraints(cur)
            self._clock("index", began)
        self.progress.finish()

    def _batches(self, source: Connection) -> Iterator[tuple[list[Key], list[bytes]]]:
        """The source's batches, the next one read while the caller writes this one: the source
        server's work then overlaps the target's (the drivers wait on sockets without the GIL)."""
        ready: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def read() -> None:
            low: Key | None = None
            try:
                while not stop.is_set():
                    keys, found = self.source.batch(source, low, self.batch_size)
                    _put(ready, stop, (keys, found))
                    if not keys:
                        return
                    low = keys[-1]
            except BaseException as exc:  # handed to the caller, raised there
                _put(ready, stop, exc)

        reader = threading.Thread(target=read, name=f"read {self.result.name}", daemon=True)
        reader.start()
        try:
            while True:
                item = ready.get()
                if isinstance(item, BaseException):
                    raise item
                if not item[0]:
                    return
                yield item
        finally:
            stop.set()
            reader.join()

    def _write_range(self, cur: psycopg.Cursor, low: Key | None, high: Key, found: list[bytes], data: bytes, *,
                     fresh: bool, kill: list[int]) -> None:
        held_data = b"" if fresh else self.target.copy_out(cur, low, high)
        if held_data == data:
            self.ranges[-1].equal = True
            return
        kill[0] -= 1
        if not held_data:
            self.target.copy_in(cur, data, kill=kill[0] == 0)
            self.result.written += len(found)
            return
        keys = self.source.keys
        held = {lines.key_text(line, keys): line for line in _split(held_data)}
        changed = [line for line in found if held.pop(lines.key_text(line, keys), None) != line]
        if changed:
            self.target.upsert(cur, b"".join(line + b"\n" for line in changed))
            self.result.written += len(changed)
        self.deletions.extend(held)

    def apply_deletions(self, target: psycopg.Connection) -> None:
        if self.deletions:
            with target.transaction(), target.cursor() as cur:
                self.target.delete(cur, self.deletions)
        self.result.deleted = len(self.deletions)
        self.deletions = []

    def verify(self, source: Connection, target: psycopg.Connection) -> str | None:
        """The target's rows, range by range, against the source's count and digest: None when
        identical, else the first difference (table, key, column)."""
        began = time.monotonic()
        self.progress.start("verify", self.result.name, self.result.source_rows)
        try:
            with target.cursor() as cur:
                for r in self.ranges:
                    if r.equal:  # read and found equal by this run, after its snapshot, and untouched since
                        self.progress.advance(r.rows)
                        continue
                    data = self.target.copy_out(cur, r.low, r.high)
                    if data.count(b"\n") != r.rows or digest(data) != r.digest:
                        return self._first_difference(source, r, _split(data))
                    self.progress.advance(r.rows)
                missing = self.target.missing_indexes(cur)
                if missing:
                    return f"{self.result.name}: index or constraint {missing[0]} is missing in the target"
                extra = _split(self.target.copy_out(cur, self.ranges[-1].high if self.ranges else None, None,
                                                    keys_only=True))
                if extra:
                    return f"{self.result.name}: key {_show(extra[0])} is in the target, not in the source"
            return None
        finally:
            self.progress.finish()
            self._clock("verify", began)

    def _first_difference(self, source: Connection, r: Range, held_lines: list[bytes]) -> str:
        keys = self.source.keys
        held = {lines.key_text(line, keys): line for line in held_lines}
        name = self.result.name
        for line in self.source.range(source, r.low, r.high):
            key = lines.key_text(line, keys)
            other = held.pop(key, None)
            if other is None:
                return f"{name}: key {_show(key)} is missing in the target"
            if other != line:
                column = next((c.name for c, a, b in zip(self.target.columns, line.split(b"\t"), other.split(b"\t"))
                               if a != b), "?")
                return f"{name}: key {_show(key)} differs (column {column})"
        if held:
            return f"{name}: key {_show(next(iter(held)))} is in the target, not in the source"
        return f"{name}: the rows after key {r.low} differ"


def _put(ready: queue.Queue, stop: threading.Event, item: object) -> None:
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _beyond(low: Key, target_max: Key) -> bool:
    """Whether every key after `low` lies beyond the target's largest key (ints; strings compare
    by code point in Python as in the C collation)."""
    try:
        return low >= target_max
    except TypeError:
        return False


def _show(key_text: bytes) -> str:
    return key_text.decode("utf-8", "replace").replace("\t", ", ")
