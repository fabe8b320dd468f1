"""Review SLA in one place (issue 18, item 4): the review target per level comes from `[review]
target_hours`; the admin API, the stats the WordPress page reads, /metrics and the n8n events read
it there; a review that passes its target produces exactly one `kyc.review_overdue` event (to
compliance) per review case, on SQLite, MariaDB and PostgreSQL, with a fake clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
import sqlalchemy as sa
from conftest import admin_headers, make_settings, new_id, post_event, with_config
from test_n8n_events import assert_valid

from bridge import config as config_module
from bridge.outbox import events_out, notify, review_sla, upkeep
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import AuditEntry, Job

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EMAIL = "rae@example.com"


@pytest.fixture
def config() -> config_module.Config:
    """Enhanced reviews may wait 48 h, basic ones 4 h."""
    return with_config(config_module.load(None), review=config_module.ReviewConfig(
        target_hours=MappingProxyType({"basic": 4, "enhanced": 48})))


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(runtime) -> Clock:  # type: ignore[no-untyped-def]
    runtime.clock = Clock(T0)
    return runtime.clock


def event(client, config, inquiry_id: str, status: str, at: datetime, user_type: str = "investor") -> None:  # type: ignore[no-untyped-def]
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status, created_at=at,
                                 email=EMAIL, first_name="Rae", template_id=config.user_types[user_type].template_id)
    assert post_event(client, body).status_code == 200


def overdue_jobs(runtime) -> list[dict]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        payloads = session.scalars(sa.select(Job.payload).where(Job.kind == queue.N8N_EVENT).order_by(Job.id))
        return [p for p in map(json.loads, payloads) if p["type"] == events_out.REVIEW_OVERDUE]


def run(runtime, at: datetime) -> review_sla.Report:  # type: ignore[no-untyped-def]
    return review_sla.run(runtime.sessions, runtime.config, now=at)


def test_one_overdue_event_per_review_case_and_a_new_review_may_go_overdue_again(client, runtime, config, clock):  # type: ignore[no-untyped-def]
    event(client, config, "inq_sla1", "needs_review", T0)  # an investor: enhanced, 48 h
    assert run(runtime, T0 + 47 * HOUR) == review_sla.Report(queued=0, overdue=0)
    assert run(runtime, T0 + 49 * HOUR) == review_sla.Report(queued=1, overdue=1)
    assert run(runtime, T0 + 50 * HOUR) == review_sla.Report(queued=0, overdue=1)  # once per case
    assert overdue_jobs(runtime) == [{"type": "kyc.review_overdue", "inquiry_id": "inq_sla1",
                                      "since": "2025-06-01T12:00:00.000Z"}]
    with transaction(runtime.sessions) as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "review.overdue")).one()
        assert (entry.subject, json.loads(entry.detail)) == ("inq_sla1", {"count": 48, "level": "enhanced"})

    # Decided, then flagged for review again by a newer event: a new case, with its own clock.
    event(client, config, "inq_sla1", "approved", T0 + 50 * HOUR)
    event(client, config, "inq_sla1", "needs_review", T0 + 60 * HOUR)
    assert run(runtime, T0 + 100 * HOUR).queued == 0  # 40 h into the new case
    assert run(runtime, T0 + 109 * HOUR).queued == 1
    assert run(runtime, T0 + 110 * HOUR).queued == 0
    ids = [p["since"] for p in overdue_jobs(runtime)]
    assert ids == ["2025-06-01T12:00:00.000Z", "2025-06-04T00:00:00.000Z"]


def test_the_target_is_per_level(client, runtime, config, clock):  # type: ignore[no-untyped-def]
    event(client, config, "inq_basic", "needs_review", T0, user_type="customer")  # basic: 4 h
    event(client, config, "inq_enh", "needs_review", T0, user_type="investor")  # enhanced: 48 h
    assert run(runtime, T0 + 5 * HOUR).queued == 1
    assert [p["inquiry_id"] for p in overdue_jobs(runtime)] == ["inq_basic"]

    clock.at = T0 + 5 * HOUR
    items = {i["inquiry_id"]: i for i in client.get("/api/v1/inquiries?status=needs_review",
                                                    headers=admin_headers()).get_json()["items"]}
    assert (items["inq_basic"]["overdue"], items["inq_basic"]["review_target_hours"]) == (True, 4)
    assert (items["inq_enh"]["overdue"], items["inq_enh"]["review_target_hours"]) == (False, 48)
    first = client.get("/api/v1/inquiries?overdue_first=1", headers=admin_headers()).get_json()["items"][0]
    assert first["inquiry_id"] == "inq_basic"

    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    assert stats["review_targets"] == {"basic": 4, "enhanced": 48} and stats["review_target_hours"] == 48
    assert (stats["review_total"], stats["review_overdue"]) == (2, 1)
    assert stats["review_overdue_by_level"] == {"basic": 1, "enhanced": 0}
    assert {q["inquiry_id"]: (q["overdue"], q["review_target_hours"]) for q in stats["review_queue"]} == {
        "inq_basic": (True, 4), "inq_enh": (False, 48)}

    metrics = client.get("/metrics").get_data(as_text=True)
    for line in ('kyc_reviews_waiting{level="basic"} 1.0', 'kyc_reviews_waiting{level="enhanced"} 1.0',
                 'kyc_reviews_overdue{level="basic"} 1.0', 'kyc_reviews_overdue{level="enhanced"} 0.0',
                 'kyc_review_target_hours{level="enhanced"} 48.0'):
        assert line in metrics, line
    clock.at = T0 + 49 * HOUR
    assert 'kyc_reviews_overdue{level="enhanced"} 1.0' in client.get("/metrics").get_data(as_text=True)


def test_the_overdue_event_is_for_compliance_and_superseded_by_a_decision(client, runtime, config, clock):  # type: ignore[no-untyped-def]
    event(client, config, "inq_sla3", "needs_review", T0)
    run(runtime, T0 + 49 * HOUR)
    [payload] = overdue_jobs(runtime)
    prepared = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=T0 + 49 * HOUR,
                              issue_links=False)
    assert not isinstance(prepared, str)
    sent = prepared.event
    assert_valid(sent)
    assert sent["type"] == "kyc.review_overdue" and sent["links"]["verify"] is None  # nothing for the person
    assert sent["review_due_at"] == sent["occurred_at"] == "2025-06-03T12:00:00.000Z"  # T0 + 48 h
    assert sent["id"] == events_out.review_overdue_event_id("inq_sla3", T0)
    assert sent["contact"]["email"] == EMAIL  # the compliance alert names the person, as needs_review does

    event(client, config, "inq_sla3", "approved", T0 + 50 * HOUR)
    skipped = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=T0 + 51 * HOUR,
                             issue_links=False)
    assert isinstance(skipped, str) and "superseded" in skipped


def test_the_needs_review_event_is_due_at_its_levels_target(client, runtime, config):  # type: ignore[no-untyped-def]
    event(client, config, "inq_sla4", "needs_review", T0, user_type="customer")
    payload = notify.status_change_payload("inq_sla4", "needs_review", occurred_at=T0)
    prepared = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=T0, issue_links=False)
    assert not isinstance(prepared, str) and prepared.event["review_due_at"] == "2025-06-01T16:00:00.000Z"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_upkeep_task_runs_on_the_schedule_only_with_n8n_on(runtime, config, database_url, client):  # type: ignore[no-untyped-def]
    assert "review_overdue" in runtime.upkeep_tasks()
    event(client, config, "inq_sla5", "needs_review", T0)
    skipped = upkeep.run_review_overdue(runtime, T0 + 49 * HOUR)
    assert skipped.outcome == "skipped" and overdue_jobs(runtime) == []  # nothing marked that was not sent
    with_n8n = Runtime.build(make_settings(database_url, N8N_WEBHOOK_URL="http://127.0.0.1:9/n8n", N8N_TOKEN="t",
                                           N8N_SIGNING_SECRET="s"), config)
    try:
        with_n8n.clock = Clock(T0 + 49 * HOUR)
        ran = upkeep.Upkeep(with_n8n).tick()
        assert [(r.task, r.outcome) for r in ran if r.task == "review_overdue"] == [("review_overdue", "done")]
        assert len(overdue_jobs(runtime)) == 1
    finally:
        with_n8n.engine.dispose()


def test_an_approval_held_by_a_monitoring_match_is_a_review_case(client, runtime, config, clock):  # type: ignore[no-untyped-def]
    """A watchlist match puts an approved person back into review (the gate says needs_review): the
    admin reads show the case in review since the match, it counts and goes overdue like any other,
    once; a dismissal ends it."""
    event(client, config, "inq_mon1", "approved", T0)  # an investor: enhanced, 48 h
    match_at = T0 + 10 * HOUR
    report = samples.report_event(event_id=new_id("evt"), report_id="rep_mon1", inquiry_id="inq_mon1",
                                  created_at=match_at)
    assert post_event(client, report).status_code == 200
    clock.at = match_at + 49 * HOUR
    queue_items = client.get("/api/v1/inquiries?status=needs_review", headers=admin_headers()).get_json()["items"]
    assert [(i["inquiry_id"], i["status"], i["overdue"], i["waiting_hours"]) for i in queue_items] == [
        ("inq_mon1", "needs_review", True, 49.0)]
    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    assert (stats["review_total"], stats["review_overdue"]) == (1, 1)
    assert stats["counts"].get("approved", 0) == 0 and stats["counts"]["needs_review"] == 1
    assert [q["inquiry_id"] for q in stats["review_queue"]] == ["inq_mon1"]
    assert run(runtime, clock.at) == review_sla.Report(queued=1, overdue=1)
    assert run(runtime, clock.at + HOUR) == review_sla.Report(queued=0, overdue=1)
    [payload] = overdue_jobs(runtime)
    assert payload["since"] == events_out.iso(match_at)
    with transaction(runtime.sessions) as session:
        job = session.scalars(sa.select(Job).where(Job.kind == queue.N8N_EVENT, Job.inquiry_id == "inq_mon1")
                              .order_by(Job.id.desc())).first()
    prepared = notify.prepare(runtime.sessions, runtime.config, json.loads(job.payload), secret_key="k", now=clock.at)
    assert not isinstance(prepared, str), prepared  # still the same case: sent
    dismissal = samples.report_event(event_id=new_id("evt"), report_id="rep_mon1", inquiry_id="inq_mon1",
                                     action="dismissed", has_match=False, created_at=match_at + 50 * HOUR)
    assert post_event(client, dismissal).status_code == 200
    assert client.get("/api/v1/inquiries?status=needs_review", headers=admin_headers()).get_json()["items"] == []
    assert isinstance(notify.prepare(runtime.sessions, runtime.config, json.loads(job.payload),
                                     secret_key="k", now=clock.at), str)  # the case ended: not sent
