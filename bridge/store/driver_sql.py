"""Core statements rendered once per dialect and run with `Connection.exec_driver_sql`.

For the intake writer's hot path. Executing a Core statement costs SQLAlchemy about 30 µs each
time before the driver sees it (cache key, parameter processing, result set-up): with a dozen
statements per batch, a third of the writer's CPU. `exec_driver_sql` skips that work and keeps
what matters: the caller's transaction, SQLAlchemy's exception classes (`IntegrityError`,
`OperationalError`, ...) and the pool's handling of a dropped connection.

The SQL still comes from the SQLAlchemy statement, compiled for the connection's dialect, and
values go through the columns' own bind processors (UTC datetimes, SQLite's datetime strings,
booleans), so what is stored is exactly what the ORM would store. Rows come back as the driver
returns them: use these for statements whose results are strings and integers only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import BindParameter, Connection, CursorResult, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Insert

Params = dict[str, Any]
_MAX_SHAPES = 1024  # list-length combinations kept per ListStatement
# The render caches below are filled without a lock: two threads may render the same statement
# once each, which is harmless.


class _Rendered:
    __slots__ = ("order", "processors", "sql")

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

    def convert(self, params: Params) -> Params | tuple[Any, ...]:
        processors = self.processors
        values = {k: (processors[k](v) if k in processors and v is not None else v) for k, v in params.items()}
        return values if self.order is None else tuple(values[k] for k in self.order)


class DriverStatement:
    """One Core statement; `run` with one dict of values, or a list of them for executemany. An
    INSERT without values names its columns by the keys of the rows it is given."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._rendered: dict[tuple[str, tuple[str, ...] | None], _Rendered] = {}

    def run(self, connection: Connection, params: Params | list[Params]) -> CursorResult[Any]:
        first = params[0] if isinstance(params, list) else params
        columns = tuple(first) if isinstance(self.statement, Insert) else None
        key = (connection.dialect.name, columns)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._rendered[key] = _Rendered(self.statement, connection.dialect, columns)
        if isinstance(params, list):
            rows = [rendered.convert(p) for p in params]
            return connection.exec_driver_sql(rendered.sql, rows)  # type: ignore[arg-type]
        return connection.exec_driver_sql(rendered.sql, rendered.convert(params))  # type: ignore[arg-type]


class ListStatement:
    """A statement with IN lists, built per list length by `build(*lengths)`, which names its
    list values `<list>_<i>`; `run(connection, fixed, lists)` fills them in."""

    def __init__(self, build: Callable[..., ClauseElement]) -> None:
        self.build = build
        self._by_lengths: dict[tuple[int, ...], DriverStatement] = {}

    def run(self, connection: Connection, fixed: Params, lists: dict[str, Sequence[Any]]) -> CursorResult[Any]:
        lengths = tuple(len(values) for values in lists.values())
        statement = self._by_lengths.get(lengths)
        if statement is None:
            if len(self._by_lengths) >= _MAX_SHAPES:
                self._by_lengths.clear()
            statement = self._by_lengths[lengths] = DriverStatement(self.build(*lengths))
        params = dict(fixed)
        for name, values in lists.items():
            params.update({f"{name}_{i}": value for i, value in enumerate(values)})
        return statement.run(connection, params)


def in_list(name: str, length: int) -> list[BindParameter[Any]]:
    """The bind parameters of an IN list, for `ListStatement` builders."""
    return [bindparam(f"{name}_{i}") for i in range(length)]


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """Send the statements run inside without waiting for each one's answer, and wait once at the
    end (psycopg's pipeline mode on PostgreSQL; elsewhere they run as usual). Only for statements
    whose results nobody reads: in the pipeline a result has no rows until the end.

    Each statement otherwise costs a round trip, which wakes both sides: sending the intake's
    writes this way cut the writer's and PostgreSQL's CPU per event by about a sixth and the
    transaction's time by a quarter (docs/benchmarks.md, round 6). An error surfaces at the end,
    as the SQLAlchemy exception class that running the failing statement alone would have raised
    (ingest_many retries IntegrityError, the store maps OperationalError to 503).
    """
    driver = connection.connection.driver_connection
    if connection.dialect.driver != "psycopg" or driver is None:
        yield
        return
    dbapi = connection.dialect.loaded_dbapi
    try:
        with driver.pipeline():
            yield
    except dbapi.Error as exc:  # (the transaction's rollback drops a lost connection from the pool)
        raise DBAPIError.instance(None, None, exc, dbapi.Error, hide_parameters=True,
                                  dialect=connection.dialect) from exc
