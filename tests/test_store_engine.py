"""Engine set-up per backend: what each connection is told when it opens."""

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from bridge.intake import ingest
from bridge.store.engine import make_engine
from bridge.store.models import Event
from test_group_commit import parsed

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_plans_intake_statements_with_their_values(runtime, config):
    """psycopg prepares a statement after five uses; a generic plan made while the tables were
    small scans them on every later batch (3 ms per batch at 12,000 events, growing)."""
    now = datetime.now(timezone.utc)
    for n in range(12):
        ingest.ingest_many(runtime.engine, config, [parsed(config, n, event_id=f"evt_plan{n:03d}")], now=now)
    with runtime.engine.connect() as connection:  # the pool's one connection, which ran them all
        # Statements without parameters (NOTIFY kyc_jobs) have one plan only, counted as generic.
        generic, custom = connection.execute(sa.text(
            "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements"
            " WHERE cardinality(parameter_types) > 0")).one()
    assert custom > 0, "nothing was prepared: the test no longer looks at what it means to"
    assert generic == 0


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_options_in_the_url_are_kept(database_url):
    engine = make_engine(f"{database_url}?options=-c%20statement_timeout%3D4321")
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SHOW statement_timeout")) == "4321ms"
            assert connection.scalar(sa.text("SHOW plan_cache_mode")) == "force_custom_plan"
    finally:
        engine.dispose()


def test_store_errors_do_not_carry_the_values_they_were_given(runtime):
    """A failed statement's message ends up in logs (log.exception in the committers): by default
    SQLAlchemy puts the statement's parameters in it, here a payload with a person's email."""
    row = {"event_id": "evt_twice", "name": "inquiry.approved", "inquiry_id": "inq_p", "received_at": NOW,
           "created_at": NOW, "applied": False, "payload": '{"email-address": "private.person@example.org"}'}
    with pytest.raises(sa.exc.IntegrityError) as failure:
        with runtime.engine.begin() as connection:
            connection.execute(sa.insert(Event.__table__), [row, row])
    assert "private.person" not in str(failure.value)
    assert "INSERT INTO kyc_events" in str(failure.value)  # the statement itself still says what failed
