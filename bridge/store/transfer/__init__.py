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
* Then sequences are set past the largest id, and every range is verified: the target prints its
  rows again (COPY TO) and their count and digest are compared with the source's (same snapshot).
  A difference names the table, its first differing key and column. Then the caller's audit chain
  check runs on the target.

Timestamps: the bridge stores naive UTC everywhere (DATETIME(6) on MariaDB, `timestamp without time
zone` on PostgreSQL, text on SQLite); neither column type depends on a session time zone, and values
are copied as UTC without conversion. MariaDB is always read as utf8mb4.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from bridge.store.engine import normalize_url
from bridge.store.models import Base
from bridge.store.transfer import lines
from bridge.store.transfer.checks import Refusal, check_and_prepare
from bridge.store.transfer.progress import Progress
from bridge.store.transfer.table import TableResult, TableTransfer

__all__ = ["KILL_HOOK", "Progress", "Refusal", "Result", "bridge_tables", "run", "summary"]

AUDIT_LOG = "kyc_audit_log"
AUDIT_TABLES = {"kyc_audit_head", AUDIT_LOG}
# Test hook: SIGKILL this process in the middle of the Nth range written (rows sent, not committed).
KILL_HOOK = "BRIDGE_MIGRATE_TEST_KILL_AT_RANGE"


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
    raise Refusal(f"the source must be SQLite or MariaDB/MySQL, not {backend}")


def target_engine(url: str) -> Engine:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "postgresql":
        raise Refusal(f"the target must be PostgreSQL (postgresql://…), not {parsed.get_backend_name()}")
    return sa.create_engine(parsed, isolation_level="READ COMMITTED", poolclass=sa.NullPool)


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
    """The caller's audit chain check on the target, in a thread: it starts as soon as the audit
    tables are written (they come early, having no parents) and runs while the rest is copied."""

    def __init__(self, target: Engine, check: Callable[[Session], tuple[bool, str]]):
        self._target, self._check = target, check
        self._thread: threading.Thread | None = None
        self.outcome: tuple[bool, str] | BaseException | None = None
        self.seconds = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit chain check", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        try:
            with Session(self._target) as session:
                self.outcome = self._check(session)
        except BaseException as exc:  # raised in the caller by wait()
            self.outcome = exc
        self.seconds = time.monotonic() - began

    def wait(self) -> tuple[bool, str]:
        self.start()
        assert self._thread is not None
        self._thread.join()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return self.outcome


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
                transfer.scan(source_conn, None if verify_only else data, kill)
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
