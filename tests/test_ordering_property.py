"""Property: any order and any duplication of one inquiry's events ends in the same state, and the
same FluentCRM tags, as delivering them in order (real endpoint, real store, FluentCRM double)."""

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bridge import config as config_module
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.store import migrate
from bridge.web import create_app
from bridge.outbox.worker import Worker
from conftest import crm_settings, post_event

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
STATUSES = ["created", "pending", "completed", "needs_review", "approved", "declined", "failed", "expired"]
counter = itertools.count()

events_strategy = st.lists(
    st.tuples(st.sampled_from(STATUSES), st.integers(min_value=0, max_value=6)),  # status, minute (ties allowed)
    min_size=1, max_size=6,
)


@st.composite
def deliveries(draw):
    events = draw(events_strategy)
    order = list(range(len(events))) + draw(st.lists(st.integers(0, len(events) - 1), max_size=4))  # duplicates
    order = draw(st.permutations(order))
    drain_after = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))  # worker interleaving
    return events, order, drain_after


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from doubles.fluentcrm import FakeFluentCRM

    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'bridge.db'}"
    migrate.upgrade(url)
    with FakeFluentCRM() as crm:
        runtime = Runtime.build(crm_settings(url, crm), config_module.load(None))
        yield runtime, create_app(runtime=runtime).test_client(), crm
        runtime.engine.dispose()


def body(config, n, label, k, status, minute):
    return samples.inquiry_event(
        event_id=f"evt_p{n:05d}_{label}_{k:02d}", inquiry_id=f"inq_p{n:05d}_{label}", status=status,
        created_at=T0 + timedelta(minutes=minute), template_id=config.user_types["investor"].template_id,
        email=f"p{n}-{label}@example.com", first_name="Prop")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_any_order_and_duplication_converges(world, case):
    runtime, client, crm = world
    events, order, drain_after = case
    n = next(counter)
    worker = Worker(runtime)

    for k, (status, minute) in sorted(enumerate(events), key=lambda e: (e[1][1], e[0])):  # in created-at order
        assert post_event(client, body(runtime.config, n, "A", k, status, minute)).status_code == 200
        worker.drain()
    for k, drain in zip(order, drain_after):
        status, minute = events[k]
        assert post_event(client, body(runtime.config, n, "B", k, status, minute)).status_code == 200
        if drain:
            worker.drain()
    worker.drain()

    from bridge.store.models import Inquiry
    with runtime.sessions() as session:
        a = session.query(Inquiry).filter_by(inquiry_id=f"inq_p{n:05d}_A").one()
        b = session.query(Inquiry).filter_by(inquiry_id=f"inq_p{n:05d}_B").one()
    assert (b.status, b.decided_at, b.decided_by.replace("_B_", "_A_")) == (a.status, a.decided_at, a.decided_by)
    tags_a = crm.contact(f"p{n}-a@example.com").tag_slugs
    tags_b = crm.contact(f"p{n}-b@example.com").tag_slugs
    assert tags_a == tags_b
    assert runtime.config.status_tags[a.status].slug in tags_a  # the CRM shows the final status
