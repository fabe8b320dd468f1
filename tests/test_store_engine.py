"""Engine set-up per backend: what each connection is told when it opens."""

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from bridge import ingest
from bridge.store.engine import make_engine
from test_group_commit import parsed


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_plans_intake_statements_with_their_values(runtime, config):
    """psycopg prepares a statement after five uses; a generic plan made while the tables were
    small scans them on every later batch (3 ms per batch at 12,000 events, growing)."""
    now = datetime.now(timezone.utc)
    for n in range(12):
        ingest.ingest_many(runtime.engine, config, [parsed(config, n, event_id=f"evt_plan{n:03d}")], now=now)
    with runtime.engine.connect() as connection:  # the pool's one connection, which ran them all
        generic, custom = connection.execute(sa.text(
            "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements")).one()
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
