"""Statements run with exec_driver_sql store exactly what SQLAlchemy's own execution stores."""

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bridge.intake import ingest
from bridge.store.driver_sql import DriverStatement, ListStatement, in_list, pipelined
from bridge.store.engine import StoreUnavailable, core_transaction
from bridge.store.models import Event
from test_group_commit import parsed

_events = Event.__table__
AT = datetime(2025, 6, 1, 12, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))


def event_row(event_id: str, at: datetime = AT) -> dict:
    return {"event_id": event_id, "name": "inquiry.approved", "inquiry_id": "inq_ds", "created_at": at,
            "received_at": at, "applied": True, "payload": "{}"}


def stored(runtime, event_id: str) -> tuple:
    """The row as the driver returns it: SQLite's datetime text, MariaDB's 1 for true."""
    with runtime.engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT created_at, received_at, applied FROM kyc_events WHERE event_id = '%s'" % event_id).one()


def test_rows_are_stored_as_sqlalchemy_stores_them(runtime):
    insert = DriverStatement(sa.insert(_events))
    with core_transaction(runtime.engine) as connection:
        insert.run(connection, [event_row("evt_driver1"), event_row("evt_driver2", AT + timedelta(microseconds=1))])
        connection.execute(sa.insert(_events), [event_row("evt_core")])
    assert stored(runtime, "evt_driver1") == stored(runtime, "evt_core")
    with runtime.sessions() as session:  # read back through the model: the same aware UTC instant
        read = session.scalars(sa.select(Event).order_by(Event.event_id)).all()
    assert [e.created_at for e in read] == [AT, AT, AT + timedelta(microseconds=1)]
    assert all(e.applied is True for e in read)


def test_list_statements_fill_their_lists_and_keep_fixed_values(runtime):
    with core_transaction(runtime.engine) as connection:
        DriverStatement(sa.insert(_events)).run(connection, [event_row(f"evt_list{n}") for n in range(5)])
    found = ListStatement(lambda n: sa.select(_events.c.event_id).where(
        _events.c.name == sa.bindparam("name"), _events.c.event_id.in_(in_list("ids", n))))
    with runtime.engine.connect() as connection:
        def ids(name, wanted):
            return sorted(r[0] for r in found.run(connection, {"name": name}, {"ids": wanted}))

        assert ids("inquiry.approved", ["evt_list1", "evt_list3", "evt_nope"]) == ["evt_list1", "evt_list3"]
        assert ids("inquiry.approved", ["evt_list4"]) == ["evt_list4"]  # another length, another statement
        assert ids("inquiry.declined", ["evt_list1"]) == []


def test_errors_arrive_as_sqlalchemy_errors_and_roll_back(runtime):
    """ingest_many retries on IntegrityError, and engine maps OperationalError to 503: both must
    still be SQLAlchemy's classes, and the transaction must leave nothing behind."""
    insert = DriverStatement(sa.insert(_events))
    with pytest.raises(IntegrityError):
        with core_transaction(runtime.engine) as connection:
            insert.run(connection, [event_row("evt_twice"), event_row("evt_twice")])
    with runtime.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(_events)) == 0


def test_pipelined_statements_all_run_and_errors_arrive_as_sqlalchemy_errors(runtime):
    """On PostgreSQL an error in a pipeline surfaces when it ends, not at the statement: it must
    still be the class ingest_many retries on, and leave nothing behind."""
    insert = DriverStatement(sa.insert(_events))
    rename = DriverStatement(sa.update(_events).where(_events.c.event_id == sa.bindparam("b_id"))
                             .values(name=sa.bindparam("b_name")))
    with core_transaction(runtime.engine) as connection:
        with pipelined(connection):
            insert.run(connection, [event_row("evt_pipe1"), event_row("evt_pipe2")])
            rename.run(connection, {"b_id": "evt_pipe2", "b_name": "inquiry.declined"})
            insert.run(connection, event_row("evt_pipe3"))
    with runtime.engine.connect() as connection:
        assert connection.execute(sa.select(_events.c.event_id, _events.c.name).order_by(_events.c.event_id)).all() \
            == [("evt_pipe1", "inquiry.approved"), ("evt_pipe2", "inquiry.declined"), ("evt_pipe3", "inquiry.approved")]

    with pytest.raises(IntegrityError):
        with core_transaction(runtime.engine) as connection:
            with pipelined(connection):
                insert.run(connection, event_row("evt_pipe4"))
                insert.run(connection, event_row("evt_pipe1"))  # stored above
                insert.run(connection, event_row("evt_pipe5"))
    with runtime.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(_events)) == 3


def test_rows_sent_in_a_pipeline_read_as_sqlalchemy_reads_them(runtime):
    """`send` reads its rows outside SQLAlchemy's result: the columns' own result processing
    (aware UTC datetimes, SQLite's datetime text parsed) must still apply."""
    with core_transaction(runtime.engine) as connection:
        DriverStatement(sa.insert(_events)).run(connection, [event_row("evt_send1"), event_row("evt_send2")])
    query = ListStatement(lambda n: sa.select(_events.c.event_id, _events.c.created_at, _events.c.applied)
                          .where(_events.c.event_id.in_(in_list("ids", n))).order_by(_events.c.event_id))
    with core_transaction(runtime.engine) as connection:
        expected = [row._asdict() for row in connection.execute(
            sa.select(_events.c.event_id, _events.c.created_at, _events.c.applied).order_by(_events.c.event_id))]
        with pipelined(connection):
            sent = query.send(connection, {}, {"ids": ["evt_send1", "evt_send2", "evt_none"]})
            none = query.send(connection, {}, {"ids": ["evt_none"]})
        rows = sent.all()
    assert rows == expected and rows[0]["created_at"] == AT and rows[0]["created_at"].tzinfo is not None
    assert none.all() == []


def test_send_is_only_for_pipelines(runtime):
    with runtime.engine.connect() as connection:
        with pytest.raises(RuntimeError):
            DriverStatement(sa.select(_events.c.event_id)).send(connection, {})


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_connection_lost_in_a_pipeline_is_unavailable_and_leaves_the_pool(runtime):
    insert = DriverStatement(sa.insert(_events))
    with pytest.raises(StoreUnavailable):
        with core_transaction(runtime.engine) as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with runtime.engine.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            with pipelined(connection):
                insert.run(connection, event_row("evt_lost"))
    with core_transaction(runtime.engine) as connection:  # a new connection, not the dead one
        insert.run(connection, event_row("evt_after"))
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_intake_round_trips_do_not_grow_with_the_batch(runtime, config, tmp_path):
    """Each round trip to PostgreSQL costs both sides a wake-up; the intake writer's transaction
    sends its writes in pipelines. Counted on the wire: one ReadyForQuery per round trip."""
    trace = tmp_path / "wire.trace"

    @sa.event.listens_for(runtime.engine, "begin")
    def _trace(connection):  # type: ignore[no-untyped-def]
        pgconn = connection.connection.driver_connection.pgconn
        pgconn.trace(os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)

    def round_trips(batch: list[tuple]) -> int:
        ingest.ingest_many(runtime.engine, config, batch, now=datetime.now(timezone.utc))
        with runtime.engine.connect() as connection:
            connection.connection.driver_connection.pgconn.untrace()
        wire = trace.read_text()
        trace.unlink()  # it holds the bound values: the bodies and emails of the events
        return wire.count("ReadyForQuery")

    # New inquiries and contacts, status changes, jobs and audit entries: every write of the intake.
    one = round_trips([parsed(config, 0, status="created")])
    eight = round_trips([parsed(config, n, status="approved", event_id=f"evt_rt{n}") for n in range(1, 9)])
    # BEGIN, the reads, the contacts (find, insert), the writes with the audit head, its entries, COMMIT.
    assert one <= 7 and eight <= 7, (one, eight)


def test_a_list_of_rows_stores_what_sqlalchemy_stores_row_by_row(runtime):
    """On PostgreSQL a list of rows travels as one JSON parameter: text that JSON escapes,
    non-ASCII, NULLs, false and datetimes in another zone must land exactly as SQLAlchemy's own
    executemany stores them, for INSERT and for UPDATE."""
    tricky = ['quote " and \\ backslash', "line\nbreak\ttab", "Zoë Ñúñez 名前 👩", "", None]
    later = AT + timedelta(days=1, microseconds=7)
    mine = DriverStatement(sa.insert(_events))
    rename = DriverStatement(sa.update(_events).where(_events.c.event_id == sa.bindparam("b_id"))
                             .values(payload=sa.bindparam("b_payload"), created_at=sa.bindparam("b_at"),
                                     applied=sa.bindparam("b_applied")))
    with core_transaction(runtime.engine) as connection:
        for prefix, run in (("evt_mine", mine.run), ("evt_core", lambda c, rows: c.execute(sa.insert(_events), rows))):
            run(connection, [{**event_row(f"{prefix}{n}", AT + timedelta(seconds=n)), "payload": text,
                              "applied": n % 2 == 0} for n, text in enumerate(tricky)])
    with runtime.engine.connect() as connection:
        inserted = connection.execute(sa.select(_events.c.event_id, _events.c.created_at, _events.c.applied,
                                                _events.c.payload).order_by(_events.c.event_id)).all()
    assert [row[1:] for row in inserted if row.event_id.startswith("evt_mine")] \
        == [row[1:] for row in inserted if row.event_id.startswith("evt_core")]
    assert [row.payload for row in inserted if row.event_id.startswith("evt_mine")] == tricky

    with core_transaction(runtime.engine) as connection:
        rename.run(connection, [{"b_id": f"evt_mine{n}", "b_payload": text, "b_at": later, "b_applied": False}
                                for n, text in enumerate(reversed(tricky))])
        connection.execute(rename.statement, [{"b_id": f"evt_core{n}", "b_payload": text, "b_at": later,
                                               "b_applied": False} for n, text in enumerate(reversed(tricky))])
    for n in range(len(tricky)):
        assert stored(runtime, f"evt_mine{n}") == stored(runtime, f"evt_core{n}")
    with runtime.sessions() as session:
        read = session.scalars(sa.select(Event).where(Event.event_id.like("evt_mine%")).order_by(Event.event_id)).all()
    assert [(e.payload, e.created_at, e.applied) for e in read] == [(t, later, False) for t in reversed(tricky)]


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_runs_a_list_of_rows_as_one_statement(runtime):
    executions = []

    @sa.event.listens_for(runtime.engine, "before_cursor_execute")
    def _count(connection, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        executions.append((statement.split()[0], executemany))

    rename = DriverStatement(sa.update(_events).where(_events.c.event_id == sa.bindparam("b_id"))
                             .values(name=sa.bindparam("b_name")))
    with core_transaction(runtime.engine) as connection:
        DriverStatement(sa.insert(_events)).run(connection, [event_row(f"evt_one{n}") for n in range(20)])
        rename.run(connection, [{"b_id": f"evt_one{n}", "b_name": "inquiry.declined"} for n in range(20)])
    assert executions == [("INSERT", False), ("UPDATE", False)]
    with runtime.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(_events)
                                 .where(_events.c.name == "inquiry.declined")) == 20


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_value_json_cannot_carry_is_refused_before_anything_is_stored(runtime):
    with pytest.raises(TypeError, match="Decimal cannot be sent"):
        with core_transaction(runtime.engine) as connection:
            DriverStatement(sa.insert(_events)).run(connection, [{**event_row("evt_bad"), "payload": Decimal("1.5")}])
    with runtime.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(_events)) == 0
