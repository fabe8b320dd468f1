"""KYC events for n8n: the pure builder against the documented JSON Schema, and webhook in →
outbox → worker → n8n (a fake n8n webhook over real HTTP) on every store backend."""

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from bridge.outbox import events_out, notify
from bridge.consent import onboarding
from bridge.persona import samples
from bridge.kyc.states import Status
from bridge.store import queue
from bridge.store.models import Job, Link
from bridge.web import create_app
from bridge.outbox.worker import Worker
from conftest import admin_headers, new_id, post_event

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "n8n-flows" / "event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def facts(**changes):
    base = dict(event_id=events_out.status_event_id("inq_1", "approved"), type=events_out.APPROVED, occurred_at=T0,
                email="pat@example.com", first_name="Pat", inquiry_id="inq_1", status="approved",
                user_type="customer", level="basic", welcome_variant="agency", verify_url=None,
                dashboard_url="https://app.withpersona.com/dashboard/inquiries/inq_1")
    base.update(changes)
    return events_out.EventFacts(**base)


def assert_valid(event):
    errors = sorted(VALIDATOR.iter_errors(event), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


# ------------------------------------------------------------------------------ pure builder


def test_ids_are_stable_per_inquiry_and_status():
    assert events_out.status_event_id("inq_1", "approved") == events_out.status_event_id("inq_1", "approved")
    ids = {events_out.status_event_id(i, s) for i in ("inq_1", "inq_2") for s in ("approved", "declined")}
    assert len(ids) == 4
    anchor = T0
    assert events_out.stalled_event_id(1, "customer", anchor, 24) == events_out.stalled_event_id(1, "customer", anchor, 24)
    assert events_out.stalled_event_id(1, "customer", anchor, 24) != events_out.stalled_event_id(1, "customer", anchor, 72)
    assert events_out.stalled_event_id(1, "customer", anchor, 24) != events_out.stalled_event_id(
        1, "customer", anchor + timedelta(seconds=1), 24)


def test_only_decisions_and_expiry_become_events():
    assert {s: events_out.type_for_status(s.value) for s in Status if events_out.type_for_status(s.value)} == {
        Status.APPROVED: "kyc.approved", Status.DECLINED: "kyc.declined", Status.FAILED: "kyc.failed",
        Status.NEEDS_REVIEW: "kyc.needs_review", Status.EXPIRED: "kyc.expired"}
    assert events_out.type_for_status("bogus") is None


@pytest.mark.parametrize("type_", events_out.TYPES)
def test_every_type_builds_a_schema_valid_event(type_):
    review = events_out.review_due_at(T0, type_, 24)
    if type_ == events_out.REVIEW_OVERDUE:  # the deadline that was missed
        review = T0 + timedelta(hours=24)
    inquiry_id = None if type_ in (events_out.LINK_REQUESTED,) else "inq_1"
    match = ("watchlist", "rep_1") if type_ == events_out.MONITORING_MATCH else None
    renewal = (T0 + timedelta(days=30), 30) if type_ == events_out.RENEWAL_DUE else None
    event = events_out.build(facts(type=type_, review_due_at=review, inquiry_id=inquiry_id, monitoring=match,
                                   renewal=renewal,
                                   verify_url="http://127.0.0.1:8000/verify/abc" if type_ in events_out.WITH_VERIFY_LINK
                                   else None))
    assert_valid(event)
    assert event["type"] == type_ and event["version"] == 1
    assert (event["review_due_at"] == "2025-06-02T12:00:00.000Z") == (
        type_ in ("kyc.needs_review", "kyc.monitoring_match", "kyc.review_overdue"))
    assert ("monitoring" in event) == (type_ == "kyc.monitoring_match")
    assert ("renewal" in event) == (type_ == "kyc.renewal_due")


def test_the_schema_wants_the_deadline_on_a_renewal_and_allows_it_only_on_a_lapse():
    due = (T0 + timedelta(days=7), 7)
    notice = events_out.build(facts(type=events_out.RENEWAL_DUE, renewal=due))
    assert_valid(notice)
    assert notice["renewal"] == {"due_at": "2025-06-08T12:00:00.000Z", "days_left": 7}
    assert_valid(events_out.build(facts(type=events_out.EXPIRED, status="expired", renewal=(T0, 0))))
    without = events_out.build(facts(type=events_out.RENEWAL_DUE))
    stray = events_out.build(facts(renewal=due))  # an approval's welcome carries no deadline
    no_inquiry = events_out.build(facts(type=events_out.RENEWAL_DUE, renewal=due, inquiry_id=None))
    assert list(VALIDATOR.iter_errors(without)) and list(VALIDATOR.iter_errors(stray))
    assert list(VALIDATOR.iter_errors(no_inquiry))
    assert events_out.renewal_event_id("inq_1", T0, 30) != events_out.renewal_event_id("inq_1", T0, 7)


def test_the_schema_wants_the_report_on_a_monitoring_match_and_nowhere_else():
    review = events_out.review_due_at(T0, events_out.MONITORING_MATCH, 24)
    without = events_out.build(facts(type=events_out.MONITORING_MATCH, review_due_at=review))
    stray = events_out.build(facts(monitoring=("watchlist", "rep_1")))
    assert list(VALIDATOR.iter_errors(without)) and list(VALIDATOR.iter_errors(stray))


def test_schema_rejects_what_the_contract_forbids():
    event = events_out.build(facts())
    for broken in (
        {**event, "document": {"number": "X123"}},  # no extra data, e.g. document fields
        {**event, "contact": {**event["contact"], "selfie_url": "http://x"}},
        {**event, "type": "kyc.approve"},
        {**event, "id": "evt_123"},
        {**event, "contact": {**event["contact"], "email": None}},  # only a reviewer alert may lack it
        {k: v for k, v in event.items() if k != "links"},
    ):
        assert list(VALIDATOR.iter_errors(broken)), broken


def test_build_rejects_unknown_types_and_summary_names_no_person():
    with pytest.raises(ValueError):
        events_out.build(facts(type="kyc.maybe"))
    summary = events_out.summary(events_out.build(facts()))
    assert summary.startswith("kyc.approved kev_") and summary.endswith("for inq_1")
    assert "pat" not in summary.lower()


def test_schema_is_documented_verbatim_in_the_readme():
    readme = (Path(__file__).resolve().parents[1] / "n8n-flows" / "README.md").read_text()
    block = readme.split("<!-- event.schema.json -->")[1].split("```json")[1].split("```")[0]
    assert json.loads(block) == SCHEMA


# ------------------------------------------------------------------------------ through the bridge


@pytest.fixture
def client(n8n_runtime):
    return create_app(runtime=n8n_runtime).test_client()


def deliver(client, config, status, minutes, *, inquiry_id="inq_n1", email="Pat@Example.com", first_name="Pat",
            user_type="customer", reference_id=None):
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=T0 + timedelta(minutes=minutes), email=email, first_name=first_name,
                                 template_id=config.user_types[user_type].template_id, reference_id=reference_id)
    assert post_event(client, body).status_code == 200


def n8n_outcomes(outcomes):
    return [o for o in outcomes if o.kind == queue.N8N_EVENT]


def test_status_change_queues_an_event_job_holding_ids_only(client, n8n_runtime, config):
    deliver(client, config, "pending", 0)
    deliver(client, config, "completed", 1)
    deliver(client, config, "approved", 2)
    with n8n_runtime.sessions() as session:
        jobs = session.scalars(sa.select(Job).where(Job.kind == queue.N8N_EVENT)).all()
    assert len(jobs) == 1  # created/pending/completed send nothing
    assert json.loads(jobs[0].payload) == {"type": "kyc.approved", "inquiry_id": "inq_n1", "status": "approved",
                                           "occurred_at": "2025-06-01T12:02:00.000Z"}
    assert "pat" not in jobs[0].payload.lower()


def test_approved_event_reaches_n8n_signed_and_schema_valid(client, n8n_runtime, config, n8n, caplog):
    caplog.set_level(logging.DEBUG)
    deliver(client, config, "approved", 1, first_name="Zoë")
    [outcome] = n8n_outcomes(Worker(n8n_runtime).drain())
    assert outcome.outcome == "done"
    [event] = n8n.accepted()
    assert_valid(event)
    assert event["id"] == events_out.status_event_id("inq_n1", "approved")
    assert event["contact"] == {"email": "pat@example.com", "first_name": "Zoë"}
    assert event["inquiry"] == {"id": "inq_n1", "status": "approved", "user_type": "customer", "level": "basic"}
    assert event["links"] == {"verify": None, "dashboard": f"{config.dashboard_url}/inq_n1"}
    assert event["welcome_variant"] == "agency" and event["occurred_at"] == "2025-06-01T12:01:00.000Z"
    assert outcome.detail == f"sent kyc.approved {event['id']} for inq_n1: n8n answered 202 accepted"
    for record in caplog.records:  # no personal data in any log line of the whole path
        assert "pat@" not in record.getMessage().lower() and "Zoë" not in record.getMessage()


@pytest.mark.parametrize("user_type, variant", [("customer", "agency"), ("cooperative_member", "membership"),
                                                ("investor", "investor"), ("vendor", "partner")])
def test_welcome_variant_follows_the_user_type(client, n8n_runtime, config, n8n, user_type, variant):
    deliver(client, config, "approved", 1, user_type=user_type)
    Worker(n8n_runtime).drain()
    assert [e["welcome_variant"] for e in n8n.accepted()] == [variant]


@pytest.mark.parametrize("status", ["failed", "expired"])  # declined: by the retry rule (tests/test_retry_rule.py)
def test_issue_events_carry_a_signed_link_for_the_same_person_and_type(client, n8n_runtime, config, n8n, status):
    deliver(client, config, status, 1, user_type="investor")
    Worker(n8n_runtime).drain()
    [event] = n8n.accepted()
    assert_valid(event)
    url = event["links"]["verify"]
    assert url.startswith(f"{config.public_url}/verify/")
    target = onboarding.resolve_link(n8n_runtime.sessions, config, secret_key=n8n_runtime.settings.secret_key,
                                     token=url.rsplit("/", 1)[1], now=datetime.now(timezone.utc))
    assert (target.email, target.user_type) == ("pat@example.com", "investor")


def test_needs_review_has_the_deadline_and_goes_out_even_without_an_email(client, n8n_runtime, config, n8n):
    deliver(client, config, "needs_review", 1, email=None, inquiry_id="inq_rev", user_type="investor")
    Worker(n8n_runtime).drain()
    [event] = n8n.accepted()
    assert_valid(event)
    assert event["contact"]["email"] is None
    assert event["review_due_at"] == "2025-06-02T12:01:00.000Z"  # occurred_at + review_deadline_hours (24)
    assert event["links"]["dashboard"] == f"{config.dashboard_url}/inq_rev"


def test_person_facing_event_without_email_is_skipped(client, n8n_runtime, config, n8n):
    deliver(client, config, "approved", 1, email=None)
    [outcome] = n8n_outcomes(Worker(n8n_runtime).drain())
    assert outcome.detail == "skipped: no email known for this inquiry"
    assert n8n.requests == []


def test_superseded_status_sends_no_stale_email(client, n8n_runtime, config, n8n):
    deliver(client, config, "needs_review", 1)
    deliver(client, config, "approved", 2)  # decided before the worker ran
    outcomes = n8n_outcomes(Worker(n8n_runtime).drain())
    assert [o.detail.split(":")[0] for o in outcomes] == ["skipped", "sent kyc.approved kev_" + outcomes[1].detail
                                                          .split("kev_")[1].split(" ")[0] + " for inq_n1"]
    assert outcomes[0].detail == "skipped: superseded (the inquiry is now approved)"
    assert [e["type"] for e in n8n.accepted()] == ["kyc.approved"]


def test_consent_withdrawal_stops_events(client, n8n_runtime, config, n8n):
    deliver(client, config, "pending", 0)
    assert onboarding.withdraw_consent(n8n_runtime.sessions, "pat@example.com", now=T0)
    deliver(client, config, "declined", 1)
    [outcome] = n8n_outcomes(Worker(n8n_runtime).drain())
    assert outcome.detail == "skipped: consent withdrawn"
    assert n8n.requests == []
    with n8n_runtime.sessions() as session:  # and no link was issued for them
        assert session.scalars(sa.select(Link)).all() == []


def test_n8n_down_then_back_up_keeps_the_event_id(client, n8n_runtime, config, n8n):
    now = [datetime.now(timezone.utc)]
    n8n_runtime.clock = lambda: now[0]
    deliver(client, config, "declined", 1)
    n8n.go_down(503)
    worker = Worker(n8n_runtime)
    assert [o.outcome for o in n8n_outcomes(worker.run_once())] == ["retry"]
    assert n8n.accepted() == []
    n8n.come_back_up()
    now[0] += timedelta(hours=2)  # past the backoff
    assert [o.outcome for o in n8n_outcomes(worker.run_once())] == ["done"]
    first, second = n8n.requests
    assert json.loads(first.raw)["id"] == json.loads(second.raw)["id"]  # the flow can drop a repeat


def test_wrong_token_dead_letters_with_a_reason_then_retry_after_fix(client, n8n_runtime, config, n8n):
    deliver(client, config, "approved", 1)
    n8n.reject_auth(True)
    [outcome] = n8n_outcomes(Worker(n8n_runtime).drain())
    assert outcome.outcome == "dead" and "403" in outcome.detail and "N8N_TOKEN" in outcome.detail
    n8n.reject_auth(False)
    with n8n_runtime.sessions.begin() as session:
        assert queue.requeue(session, None, now=n8n_runtime.clock())
    assert [o.outcome for o in n8n_outcomes(Worker(n8n_runtime).drain())] == ["done"]
    assert len(n8n.accepted()) == 1


def test_rerun_of_a_delivered_job_is_dropped_by_the_flow(client, n8n_runtime, config, n8n):
    from bridge.outbox.worker import n8n_event_handler

    deliver(client, config, "approved", 1)
    Worker(n8n_runtime).drain()
    with n8n_runtime.sessions() as session:
        job = session.scalars(sa.select(Job).where(Job.kind == queue.N8N_EVENT)).one()
    claimed = queue.ClaimedJob(job.id, job.kind, job.inquiry_id, json.loads(job.payload), 2, 8, "x")
    assert n8n_event_handler(n8n_runtime)(claimed).endswith("n8n answered 200 duplicate")
    assert len(n8n.accepted()) == 1


def test_without_n8n_url_events_are_built_not_sent(runtime, config):
    app_client = create_app(runtime=runtime).test_client()
    deliver(app_client, config, "declined", 1)
    [outcome] = n8n_outcomes(Worker(runtime).drain())
    assert outcome.outcome == "done"
    assert outcome.detail == (f"dry run: would send kyc.declined {events_out.status_event_id('inq_n1', 'declined')}"
                              " for inq_n1")
    with runtime.sessions() as session:  # a dry run issues no link
        assert session.scalars(sa.select(Link)).all() == []
    assert "events are built, not sent" in runtime.describe_outputs()[1]


def test_link_requested_event(client, n8n_runtime, config, n8n):
    issued = client.post("/api/v1/links", headers=admin_headers(),
                         json={"email": "sam@example.com", "user_type": "vendor", "first_name": "Sam"})
    assert issued.status_code == 201
    with n8n_runtime.sessions.begin() as session:
        contact_id = session.execute(sa.text("SELECT id FROM kyc_contacts WHERE email = 'sam@example.com'")).scalar()
        notify.request_link(session, config, contact_id=contact_id, user_type="vendor", now=T0)
    Worker(n8n_runtime).drain()
    [event] = n8n.accepted()
    assert_valid(event)
    assert event["type"] == "kyc.link_requested" and event["contact"]["first_name"] == "Sam"
    assert event["inquiry"] == {"id": None, "status": "not_started", "user_type": "vendor", "level": "basic"}
    assert event["links"]["verify"].startswith(f"{config.public_url}/verify/")
    with n8n_runtime.sessions.begin() as session, pytest.raises(onboarding.OnboardingError):
        notify.request_link(session, config, contact_id=contact_id, user_type="astronaut", now=T0)
