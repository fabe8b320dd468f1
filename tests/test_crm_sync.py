"""Webhook in → worker → FluentCRM (the recorded-contract double over real HTTP)."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bridge.outbox import crm_sync
from bridge.intake import ingest
from bridge.kyc import tags
from bridge.persona import events, samples
from bridge.kyc.states import Status
from bridge.store.engine import core_transaction
from bridge.store.models import Inquiry
from bridge.web import create_app
from bridge.outbox.worker import Worker
from conftest import admin_headers, new_id, post_event

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def client(crm_runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=crm_runtime).test_client()


def deliver(client, config, status, minutes, inquiry_id="inq_crm1", email="Pat@Example.com", user_type="investor"):
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=T0 + timedelta(minutes=minutes), email=email, first_name="Pat",
                                 template_id=config.user_types[user_type].template_id)
    assert post_event(client, body).status_code == 200


def crm(outcomes):
    """The CRM sync jobs among the worker's outcomes (a status change also queues an n8n event)."""
    return [o for o in outcomes if o.kind == "crm.sync"]


def crm_state(client, inquiry_id="inq_crm1"):
    return client.get(f"/api/v1/inquiries/{inquiry_id}", headers=admin_headers()).get_json()


def test_new_contact_is_created_without_marketing_status_and_tagged(client, crm_runtime, config, fluentcrm):
    deliver(client, config, "approved", 1)
    outcomes = crm(Worker(crm_runtime).drain())
    assert [o.outcome for o in outcomes] == ["done"]
    contact = fluentcrm.contact("pat@example.com")
    assert contact.status == "transactional"
    assert set(contact.tag_slugs) == {"kyc-approved", "kyc-type-investor"}
    assert {t.slug: t.title for t in fluentcrm.tags()}["kyc-approved"] == "KYC: Approved"
    creates = [r for r in fluentcrm.requests if r.method == "POST" and r.path == "/subscribers"]
    assert len(creates) == 1 and "__force_update" not in creates[0].json
    assert all(isinstance(t, int) for t in creates[0].json.get("tags", []))  # ids, never titles
    assert crm_state(client)["crm_sync"] == "done"


def test_status_change_swaps_the_status_tag(client, crm_runtime, config, fluentcrm):
    deliver(client, config, "needs_review", 1)
    Worker(crm_runtime).drain()
    assert "kyc-needs-review" in fluentcrm.contact("pat@example.com").tag_slugs
    deliver(client, config, "approved", 2)
    Worker(crm_runtime).drain()
    assert set(fluentcrm.contact("pat@example.com").tag_slugs) == {"kyc-approved", "kyc-type-investor"}


def test_existing_contact_keeps_its_status_and_other_tags(client, crm_runtime, config, fluentcrm):
    fluentcrm.add_contact("pat@example.com", first_name="Pat", status="subscribed", tag_slugs=["vip-buyer"])
    deliver(client, config, "declined", 1)
    Worker(crm_runtime).drain()
    contact = fluentcrm.contact("pat@example.com")
    assert contact.status == "subscribed"
    assert set(contact.tag_slugs) == {"vip-buyer", "kyc-declined", "kyc-type-investor"}


def test_fluentcrm_down_then_back_up(client, crm_runtime, config, fluentcrm):
    clock_now = [datetime.now(timezone.utc)]
    crm_runtime.clock = lambda: clock_now[0]
    deliver(client, config, "approved", 1)
    fluentcrm.go_down(503)
    worker = Worker(crm_runtime)
    assert [o.outcome for o in crm(worker.run_once())] == ["retry"]
    state = crm_state(client)
    assert state["crm_sync"] == "pending" and "503" in state["crm_sync_error"]
    assert fluentcrm.contact("pat@example.com") is None
    fluentcrm.come_back_up()
    clock_now[0] += timedelta(hours=2)  # past the backoff
    assert [o.outcome for o in crm(worker.run_once())] == ["done"]
    assert set(fluentcrm.contact("pat@example.com").tag_slugs) == {"kyc-approved", "kyc-type-investor"}
    assert crm_state(client)["crm_sync"] == "done"


def test_rejected_credentials_dead_letter_with_reason_and_retry_after_fix(client, crm_runtime, config, fluentcrm):
    deliver(client, config, "approved", 1)
    fluentcrm.reject_auth(True)
    assert [o.outcome for o in crm(Worker(crm_runtime).drain())] == ["dead"]
    state = crm_state(client)
    assert state["crm_sync"] == "dead" and "401" in state["crm_sync_error"]
    fluentcrm.reject_auth(False)
    from bridge.store import queue

    with crm_runtime.sessions.begin() as session:
        assert queue.requeue(session, None, now=crm_runtime.clock())
    assert [o.outcome for o in crm(Worker(crm_runtime).drain())] == ["done"]
    assert crm_state(client)["crm_sync"] == "done"


def test_sync_is_idempotent_when_rerun(client, crm_runtime, config, fluentcrm):
    deliver(client, config, "approved", 1)
    Worker(crm_runtime).drain()
    fluentcrm.clear_requests()
    from bridge.outbox.worker import crm_sync_handler
    from bridge.store.queue import ClaimedJob

    handler = crm_sync_handler(crm_runtime)
    handler(ClaimedJob(0, "crm.sync", "inq_crm1", {"inquiry_id": "inq_crm1"}, 2, 8, "x"))
    assert fluentcrm.writes() == []  # a re-run (e.g. after a lost lease) writes nothing
    assert set(fluentcrm.contact("pat@example.com").tag_slugs) == {"kyc-approved", "kyc-type-investor"}


def test_inquiry_without_email_is_skipped_not_lost(client, crm_runtime, config, fluentcrm):
    deliver(client, config, "approved", 1, email=None)
    assert [o.detail for o in crm(Worker(crm_runtime).drain())] == ["skipped: no email known for this inquiry"]
    assert crm_state(client)["crm_sync"] == "skipped"
    assert fluentcrm.writes() == []


def test_a_claimed_sync_waits_for_the_intake_transaction_that_counted_on_it(runtime, config):
    """Intake locks the inquiry, sees its CRM sync still waiting and so queues no new one. If a
    worker claims that sync meanwhile, the sync must read the state intake is about to commit,
    not the one before it, or the new status never reaches FluentCRM."""
    body = samples.encode(samples.inquiry_event(
        event_id="evt_race1", inquiry_id="inq_race", status="pending", created_at=T0, email="race@example.com",
        template_id=config.user_types["investor"].template_id))
    ingest.ingest_many(runtime.engine, config, [(events.parse(body), body)], now=T0)
    inquiries = Inquiry.__table__
    read: dict[str, object] = {}
    with core_transaction(runtime.engine) as intake:  # an intake transaction, still open
        intake.execute(sa.select(inquiries.c.id).where(inquiries.c.inquiry_id == "inq_race").with_for_update())
        intake.execute(sa.update(inquiries).where(inquiries.c.inquiry_id == "inq_race").values(status="approved"))
        reader = threading.Thread(target=lambda: read.update(target=crm_sync.target(runtime.sessions, config,
                                                                                    "inq_race", now=T0)))
        reader.start()
        reader.join(1.0)
        assert reader.is_alive(), "the sync read the inquiry before the open intake transaction committed"
    reader.join(30)
    target = read["target"]
    assert isinstance(target, crm_sync.Target)
    assert target.plan == tags.plan(config.status_tags, Status.APPROVED, config.user_types["investor"],
                                    monitoring_tag=config.monitoring_tag)


def test_consent_withdrawal_takes_the_kyc_tags_away_and_asks_persona_to_redact(client, crm_runtime, config, fluentcrm):
    """Issue 17: a withdrawal removes the KYC tags in FluentCRM (not the site's other tags) and,
    with a Persona API key, queues the redaction of the person's inquiries, as erasure does."""
    from dataclasses import replace

    from bridge.store.models import Job

    fluentcrm.add_contact("pat@example.com", tag_slugs=["newsletter"])  # the site's own tag stays
    deliver(client, config, "needs_review", 1, inquiry_id="inq_w1")
    deliver(client, config, "approved", 2, inquiry_id="inq_w1")
    Worker(crm_runtime).drain()
    assert {"kyc-approved", "kyc-type-investor", "newsletter"} <= set(fluentcrm.contact("pat@example.com").tag_slugs)

    crm_runtime.settings = replace(crm_runtime.settings, persona_api_key="persona_test_key")
    response = create_app(runtime=crm_runtime).test_client().delete(
        "/api/v1/contacts/pat@example.com/consent", headers=admin_headers())
    assert response.status_code == 200
    with crm_runtime.sessions() as session:
        queued = session.execute(sa.select(Job.kind, Job.inquiry_id).where(Job.state == "queued")).all()
    assert sorted(queued) == [("crm.sync", "inq_w1"), ("persona.redact", "inq_w1")]
    crm_runtime.settings = replace(crm_runtime.settings, persona_api_key=None)  # no Persona here: skip the call
    outcomes = crm(Worker(crm_runtime).drain())
    assert [o.outcome for o in outcomes] == ["done"]
    assert set(fluentcrm.contact("pat@example.com").tag_slugs) == {"newsletter"}
    # A later status change adds nothing back.
    deliver(client, config, "declined", 3, inquiry_id="inq_w1")
    Worker(crm_runtime).drain()
    assert not {"kyc-declined", "kyc-type-investor"} & set(fluentcrm.contact("pat@example.com").tag_slugs)


def test_withdrawal_of_a_person_fluentcrm_does_not_know_creates_no_contact(client, crm_runtime, config, fluentcrm):
    from bridge.consent import onboarding

    # Stored, never synced (the job is taken over before the worker runs).
    deliver(client, config, "approved", 1, inquiry_id="inq_w2", email="quiet@example.com")
    with crm_runtime.sessions.begin() as session:
        from bridge.store.models import Job

        session.execute(sa.delete(Job))
    assert onboarding.withdraw_consent(crm_runtime.sessions, "quiet@example.com", now=T0)
    outcomes = crm(Worker(crm_runtime).drain())
    assert [o.outcome for o in outcomes] == ["done"]
    assert all(c.email != "quiet@example.com" for c in fluentcrm.contacts())
    assert not [r for r in fluentcrm.requests if r.method == "POST" and r.path == "/subscribers"]
