"""Statements run with exec_driver_sql store exactly what SQLAlchemy's own execution stores."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bridge.store.driver_sql import DriverStatement, ListStatement, in_list
from bridge.store.engine import core_transaction
from bridge.store.models import Event

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
