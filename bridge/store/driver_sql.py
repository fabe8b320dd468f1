"""Core statements rendered once per dialect and run with `Connection.exec_driver_sql`.

For the intake writer's hot path. Executing a Core statement costs SQLAlchemy about 30 µs each
time before the driver sees it (cache key, parameter processing, result set-up): with a dozen
statements per batch, a third of the writer's CPU. `exec_driver_sql` skips that work and keeps
what matters: the caller's transaction, SQLAlchemy's exception classes (`IntegrityError`,
`OperationalError`, ...) and the pool's handling of a dropped connection.

The SQL still comes from the SQLAlchemy statement, compiled for the connection's dialect, and
values go through the columns' own bind processors (UTC datetimes, SQLite's datetime strings,
booleans), so what is stored is exactly what the ORM would store. Rows from `run` come back as
the driver returns them (use it for results of strings and integers only); rows from `send`, the
way to read inside `pipelined`, go through the columns' result processors.

On PostgreSQL an INSERT or UPDATE run with a list of rows executes once, with the rows as one
JSON parameter read by `json_to_recordset`: executemany sends one command per row, and in a
batch of nine events the per-row work (psycopg's per-command sending, PostgreSQL's Bind/Execute)
was a tenth of the writer's CPU and a seventh of PostgreSQL's (docs/benchmarks.md, round 7).
SQLite's and pymysql's executemany already run in C or as one multi-row INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import date
from typing import Any

from sqlalchemy import BindParameter, Connection, CursorResult, bindparam, cast, column, func, select
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Insert, Update, visitors

Params = dict[str, Any]
_PIPELINE = "kyc_bridge_pipelined"  # Connection.info key: inside `pipelined`
_MAX_SHAPES = 1024  # list-length combinations kept per ListStatement
# The render caches below are filled without a lock: two threads may render the same statement
# once each, which is harmless.


class _Rendered:
    __slots__ = ("columns", "order", "processors", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        self.sql = compiled.string
        # Positional drivers (sqlite3's qmark) take a tuple in this order; named ones the dict.
        self.order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        # A SELECT's column names and result processors, for rows read by `send` (UTC datetimes,
        # SQLite's datetime strings), as SQLAlchemy's own result would convert them.
        selected = getattr(statement, "selected_columns", None)
        self.columns = [] if selected is None else [
            (selected_column.key, selected_column.type.dialect_impl(dialect).result_processor(dialect, None))
            for selected_column in selected]

    def convert(self, params: Params) -> Params | tuple[Any, ...]:
        processors = self.processors
        values = {k: (processors[k](v) if k in processors and v is not None else v) for k, v in params.items()}
        return values if self.order is None else tuple(values[k] for k in self.order)


def _json_value(value: Any) -> str:
    if isinstance(value, date):  # datetimes too, as the bind processors left them (naive UTC)
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be sent as a JSON row value")


class _RowsRendered:
    """An INSERT or UPDATE for many rows at once on PostgreSQL: each per-row bind parameter becomes
    a column of `json_to_recordset(:rows)`, typed as the parameter (so PostgreSQL reads the JSON
    text as the column's type), and the statement takes its rows from there."""

    __slots__ = ("processors", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        per_row = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None).binds
        rows = func.json_to_recordset(cast(bindparam("rows"), JSON)).table_valued(
            *(column(name, bind.type) for name, bind in per_row.items())).render_derived(name="r", with_types=True)
        if isinstance(statement, Insert):
            statement = statement.table.insert().from_select(list(per_row), select(*rows.c))  # type: ignore[attr-defined]
        else:  # UPDATE ... FROM the rows
            statement = visitors.replacement_traverse(
                statement, {}, lambda e: rows.c[e.key] if isinstance(e, BindParameter) and e.key in per_row else None)
        self.sql = statement.compile(dialect=dialect).string
        self.processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                           for name, bind in per_row.items()}

    def convert(self, rows: list[Params]) -> Params:
        processed = []
        for row in rows:
            values = {}
            for name, processor in self.processors.items():
                value = row[name]
                values[name] = value if processor is None or value is None else processor(value)
            processed.append(values)
        return {"rows": json.dumps(processed, default=_json_value, ensure_ascii=False, separators=(",", ":"))}


class DriverStatement:
    """One Core statement; `run` with one dict of values, or a list of them for executemany (on
    PostgreSQL, an INSERT or UPDATE runs once for the whole list). An INSERT without values names
    its columns by the keys of the rows it is given."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._rendered: dict[tuple[str, tuple[str, ...] | None], _Rendered] = {}
        self._as_rows = isinstance(statement, (Insert, Update)) and not statement._returning  # type: ignore[attr-defined]
        self._rows_rendered: dict[tuple[str, ...] | None, _RowsRendered] = {}  # PostgreSQL's only

    def run(self, connection: Connection, params: Params | list[Params]) -> CursorResult[Any]:
        first = params[0] if isinstance(params, list) else params
        columns = tuple(first) if isinstance(self.statement, Insert) else None
        if isinstance(params, list) and self._as_rows and connection.dialect.name == "postgresql":
            as_rows = self._rows_rendered.get(columns)
            if as_rows is None:
                as_rows = self._rows_rendered[columns] = _RowsRendered(self.statement, connection.dialect, columns)
            return connection.exec_driver_sql(as_rows.sql, as_rows.convert(params))  # type: ignore[arg-type]
        rendered = self._render(connection, columns)
        if isinstance(params, list):
            rows = [rendered.convert(p) for p in params]
            return connection.exec_driver_sql(rendered.sql, rows)  # type: ignore[arg-type]
        return connection.exec_driver_sql(rendered.sql, rendered.convert(params))  # type: ignore[arg-type]

    def send(self, connection: Connection, params: Params) -> PendingRows:
        """Run a SELECT inside `pipelined`; its rows are read from the result after the block."""
        if not connection.info.get(_PIPELINE):
            raise RuntimeError("send() is for statements inside a pipelined() block")
        rendered = self._render(connection, None)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(rendered.sql, rendered.convert(params))
        return PendingRows(cursor, rendered.columns)


    def _render(self, connection: Connection, columns: tuple[str, ...] | None) -> _Rendered:
        key = (connection.dialect.name, columns)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._rendered[key] = _Rendered(self.statement, connection.dialect, columns)
        return rendered


class PendingRows:
    """The rows of a statement sent in a pipeline: readable once the pipeline has ended."""

    def __init__(self, cursor: Any, columns: list[tuple[str, Callable[[Any], Any] | None]]) -> None:
        self._cursor, self._columns = cursor, columns

    def all(self) -> list[dict[str, Any]]:
        try:
            return [{name: (convert(value) if convert is not None else value)
                     for (name, convert), value in zip(self._columns, row)} for row in self._cursor.fetchall()]
        finally:
            self._cursor.close()


class ListStatement:
    """A statement with IN lists, built per list length by `build(*lengths)`, which names its
    list values `<list>_<i>`; `run(connection, fixed, lists)` fills them in."""

    def __init__(self, build: Callable[..., ClauseElement]) -> None:
        self.build = build
        self._by_lengths: dict[tuple[int, ...], DriverStatement] = {}

    def run(self, connection: Connection, fixed: Params, lists: dict[str, Sequence[Any]]) -> CursorResult[Any]:
        return self._statement(lists).run(connection, self._params(fixed, lists))

    def send(self, connection: Connection, fixed: Params, lists: dict[str, Sequence[Any]]) -> PendingRows:
        """`run` inside `pipelined`, for a SELECT (see DriverStatement.send)."""
        return self._statement(lists).send(connection, self._params(fixed, lists))

    def _statement(self, lists: dict[str, Sequence[Any]]) -> DriverStatement:
        lengths = tuple(len(values) for values in lists.values())
        statement = self._by_lengths.get(lengths)
        if statement is None:
            if len(self._by_lengths) >= _MAX_SHAPES:
                self._by_lengths.clear()
            statement = self._by_lengths[lengths] = DriverStatement(self.build(*lengths))
        return statement

    @staticmethod
    def _params(fixed: Params, lists: dict[str, Sequence[Any]]) -> Params:
        params = dict(fixed)
        for name, values in lists.items():
            params.update({f"{name}_{i}": value for i, value in enumerate(values)})
        return params


def in_list(name: str, length: int) -> list[BindParameter[Any]]:
    """The bind parameters of an IN list, for `ListStatement` builders."""
    return [bindparam(f"{name}_{i}") for i in range(length)]


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """Send the statements run inside without waiting for each one's answer, and wait once at the
    end (psycopg's pipeline mode on PostgreSQL; elsewhere they run one by one as usual). Inside,
    `run` is for statements whose results nobody reads, and `send` for SELECTs: their rows are
    read after the block.

    Each statement otherwise costs a round trip, which wakes both sides: sending the intake's
    writes this way cut the writer's and PostgreSQL's CPU per event by about a sixth and the
    transaction's time by a quarter (docs/benchmarks.md, round 6). An error surfaces at the end
    on PostgreSQL, as the SQLAlchemy exception class that running the failing statement alone
    would have raised (ingest_many retries IntegrityError, the store maps OperationalError to 503).
    """
    driver = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    pipeline = driver.pipeline() if connection.dialect.driver == "psycopg" else nullcontext()  # type: ignore[union-attr]
    info = connection.info  # (read before: a connection lost inside can no longer give it)
    info[_PIPELINE] = True
    try:
        with pipeline:
            yield
    except dbapi.Error as exc:  # (the transaction's rollback drops a lost connection from the pool)
        raise DBAPIError.instance(None, None, exc, dbapi.Error, hide_parameters=True,
                                  dialect=connection.dialect) from exc
    finally:
        info.pop(_PIPELINE, None)
