"""`kyc-bridge migrate-store`: copy a bridge store (SQLite or MariaDB/MySQL) into PostgreSQL.

How it works, table by table in foreign-key order (parents first, from the models' metadata, so
tables and columns added later are copied without changes here):

* The source is read in one snapshot (a REPEATABLE READ transaction; a deferred read transaction
  on SQLite), in primary-key order, in batches of `batch_size` rows (keyset pagination, never
  OFFSET): memory holds one batch whatever the size of the store.
* Each batch is a key range `(previous last key, this last key]`. Its digest is the SHA-256 of
  the canonical form of its rows: each row's line in PostgreSQL's COPY text format, rendered by
  the source's own SQL (see lines.py), so the bytes copied are the bytes digested.
* A range the target does not hold yet is written with COPY; a range the target already holds is
  printed there (COPY TO) and compared: equal ranges are skipped, otherwise the rows that differ are
  upserted and the target's extra rows are deleted (after all tables, children first). Each range
  is one target transaction, so a kill -9 loses at most the range in flight and a new run skips
  what is already there: resuming and an incremental run on a live source are the same run.
* A first load drops the models' secondary indexes of a table and builds them after it; every
  run creates any that are missing.
* Then sequences are set past the largest id, and every range this run wrote is verified: the
  target prints its rows again (COPY TO) and their count and digest are compared with the
  source's (same snapshot); ranges this run read from the target and found equal were verified
  by that read. A difference names the table, its first differing key and column. The caller's
  audit chain check runs on the target in a forked process as soon as the audit tables are final.

Timestamps: the bridge stores naive UTC everywhere (DATETIME(6) on MariaDB, `timestamp without time
zone` on PostgreSQL, text on SQLite); neither column type depends on a session time zone, and values
are copied as UTC without conversion. MariaDB is always read as utf8mb4.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from bridge.store.engine import normalize_url
from bridge.store.models import AuditEntry, AuditHead, Base
from bridge.store.transfer import lines
from bridge.store.transfer.checks import Refusal, check_and_prepare
from bridge.store.transfer.progress import Progress
from bridge.store.transfer.table import TableResult, TableTransfer

__all__ = ["KILL_HOOK", "Failed", "Progress", "Refusal", "Result", "bridge_tables", "run", "summary"]

AUDIT_LOG = AuditEntry.__tablename__
AUDIT_TABLES = {AuditHead.__tablename__, AUDIT_LOG}
# Test hook: SIGKILL this process in the middle of the Nth range written (rows sent, not committed).
KILL_HOOK = "BRIDGE_MIGRATE_TEST_KILL_AT_RANGE"


class Failed(Exception):
    """A database refused a statement mid-run; what was committed stays, the next run goes on.
    The message names the table and the server's primary message, never row values (a unique
    violation's detail would quote an email)."""


@dataclass
class Result:
    tables: list[TableResult] = field(default_factory=list)
    difference: str | None = None  # the first difference found by the verification; None: identical
    chain: str = ""  # the target's audit chain verdict
    seconds: float = 0.0
    chain_seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return self.difference is None


def bridge_tables() -> list[sa.Table]:
    """Every table of the models, parents before children (tables added later come along)."""
    return list(Base.metadata.sorted_tables)


def source_engine(url: str) -> Engine:
    """A reader for one consistent snapshot of the source."""
    parsed = make_url(normalize_url(url))
    backend = parsed.get_backend_name()
    if backend in ("mysql", "mariadb"):
        # utf8mb4 whatever the URL or the server default say: utf8/latin1 would mangle emoji.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        return sa.create_engine(parsed, isolation_level="REPEATABLE READ", poolclass=sa.NullPool,
                                hide_parameters=True)
    if backend == "sqlite":
        engine = sa.create_engine(parsed, poolclass=sa.NullPool, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # we say BEGIN ourselves: a deferred read snapshot

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN")
        return engine
    raise Refusal(f"the source must be SQLite or MariaDB/MySQL, not {backend}")


def target_engine(url: str) -> Engine:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "postgresql":
        raise Refusal(f"the target must be PostgreSQL (postgresql://…), not {parsed.get_backend_name()}")
    return sa.create_engine(parsed, isolation_level="READ COMMITTED", poolclass=sa.NullPool, hide_parameters=True)


def _data_connection(target: Engine) -> psycopg.Connection:
    """psycopg itself for COPY, with the output settings the canonical lines assume."""
    conninfo = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(conninfo, autocommit=True)  # one explicit transaction per range
    connection.execute("SET DateStyle TO ISO, YMD")
    connection.execute("SET bytea_output TO hex")
    connection.execute("SET client_encoding TO 'UTF8'")
    # A range's commit need not wait for its WAL flush: a range lost to a crash is found missing
    # by the next run's comparison and copied again; the run's end waits for everything (below).
    connection.execute("SET synchronous_commit TO off")
    return connection


class _ChainCheck:
    """The caller's audit chain check on the target, in a forked process: it starts as soon as
    the audit tables are final (they come early, having no parents) and runs while the rest is
    copied. A process, not a thread: a CPU-bound thread would hold the GIL against the threads
    waiting on the databases' sockets and slow the copy down more than it gains."""

    def __init__(self, target: Engine, check: Callable[[Session], tuple[bool, str]]):
        self._target, self._check = target, check
        self._child: tuple[int, int] | None = None  # pid, read end of its pipe
        self.seconds = 0.0

    def _run_here(self) -> tuple[bool, str]:
        began = time.monotonic()
        engine = sa.create_engine(self._target.url, poolclass=sa.NullPool)
        try:
            with Session(engine) as session:
                return self._check(session)
        finally:
            engine.dispose()
            self.seconds = time.monotonic() - began

    def start(self) -> None:
        """Fork now (no other thread runs between tables; the child touches none of our connections)."""
        if self._child is not None or not hasattr(os, "fork"):
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: check, report, and leave without running any cleanup of the parent's objects
            try:
                os.close(read_end)
                ok, message = self._run_here()
                os.write(write_end, json.dumps([ok, message, self.seconds]).encode())
            except BaseException as exc:
                os.write(write_end, json.dumps([False, f"check failed: {type(exc).__name__}", 0]).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        self._child = (pid, read_end)

    def abandon(self) -> None:
        """The run failed: stop the child, if any, and reap it."""
        if self._child is not None:
            pid, read_end = self._child
            self._child = None
            os.close(read_end)
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)

    def wait(self) -> tuple[bool, str]:
        if self._child is None:
            return self._run_here()
        pid, read_end = self._child
        self._child = None
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read()
        os.waitpid(pid, 0)
        ok, message, self.seconds = json.loads(report) if report else (False, "check died", 0.0)
        return bool(ok), str(message)


def run(source_url: str, target_url: str, *, batch_size: int = 5000, verify_only: bool = False,
        progress: Progress | None = None,
        chain_check: Callable[[Session], tuple[bool, str]] | None = None) -> Result:
    """Copy (unless verify_only), then verify. Raises Refusal before writing anything when the
    run must not happen. `chain_check(session on the target)` → (ok, message)."""
    if batch_size < 1:
        raise Refusal("--batch-size must be at least 1")
    progress = progress or Progress()
    began = time.monotonic()
    target = target_engine(target_url)
    source = source_engine(source_url)
    result = Result()
    kill = [int(os.environ.get(KILL_HOOK, "0") or 0)]
    try:
        dialect = lines.for_engine(source)
        transfers = [TableTransfer(t, dialect, batch_size, progress) for t in bridge_tables()]
    except lines.UnsupportedColumn as exc:
        raise Refusal(str(exc)) from None
    chain = _ChainCheck(target, chain_check) if chain_check is not None else None
    try:
        with source.connect() as source_conn, source_conn.begin():
            check_and_prepare(source_conn, target, target_url, verify_only=verify_only)
            data = _data_connection(target)
            if chain is not None and verify_only:
                chain.start()
            for transfer in transfers:
                try:
                    transfer.scan(source_conn, None if verify_only else data, kill)
                except psycopg.Error as exc:
                    raise Failed(f"{transfer.result.name}: PostgreSQL refused the write: "
                                 f"{exc.diag.message_primary or type(exc).__name__} (SQLSTATE {exc.sqlstate})") from None
                except sa.exc.DBAPIError as exc:
                    raise Failed(f"{transfer.result.name}: reading the source failed: "
                                 f"{type(exc.orig).__name__}") from None
                result.tables.append(transfer.result)
                done = {t.name for t in result.tables}
                if chain is not None and AUDIT_TABLES <= done and not any(
                        t.deletions for t in transfers if t.result.name in AUDIT_TABLES):
                    chain.start()  # the audit tables are final: check their chain while the rest is copied
            if not verify_only:
                for transfer in reversed(transfers):  # children first
                    transfer.apply_deletions(data)
                with data.transaction(), data.cursor() as cur:
                    for transfer in transfers:
                        transfer.target.reset_sequence(cur)
            data.execute("SET synchronous_commit TO on")
            data.execute("SELECT txid_current()")  # a synchronous commit: the ranges before it are durable
            for transfer in transfers:
                result.difference = transfer.verify(source_conn, data)
                if result.difference:
                    break
            data.close()
            if chain is not None:
                ok, message = chain.wait()
                result.chain, result.chain_seconds = message, chain.seconds
                if not ok and result.difference is None:
                    result.difference = f"{AUDIT_LOG}: {message}"
    finally:
        if chain is not None:
            chain.abandon()
        source.dispose()
        target.dispose()
    result.seconds = time.monotonic() - began
    return result


def summary(result: Result) -> list[str]:
    """The end-of-run table: rows, what was written, rows/s of the copy, where the time went."""
    lines_ = [f"{'table':<20} {'rows':>9} {'written':>9} {'deleted':>7} {'rows/s':>8}  "
              f"{'read s':>6} {'write s':>7} {'index s':>7} {'verify s':>8}"]
    for t in result.tables:
        copy = t.seconds["read"] + t.seconds["write"]
        rate = t.source_rows / copy if copy else 0
        lines_.append(f"{t.name:<20} {t.source_rows:>9,} {t.written:>9,} {t.deleted:>7,} {rate:>8,.0f}  "
                      f"{t.seconds['read']:>6.2f} {t.seconds['write']:>7.2f} {t.seconds['index']:>7.2f} "
                      f"{t.seconds['verify']:>8.2f}")
    total = sum(t.source_rows for t in result.tables)
    rate = total / result.seconds if result.seconds else 0
    lines_.append(f"{total:,} rows in {result.seconds:.1f} s ({rate:,.0f} rows/s), "
                  f"audit chain check {result.chain_seconds:.1f} s (alongside the copy)")
    return lines_
