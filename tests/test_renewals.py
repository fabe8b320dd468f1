"""Renewals (issue 18, item 3): an approval of a user type with `reverify_after_days` gets a
`kyc.renewal_due` notice per window before its deadline, and lapses at it: the person is `expired`
(gate, FluentCRM tag, a `kyc.expired` event with a fresh link) until a newer approval. On SQLite,
MariaDB and PostgreSQL, with a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest
import sqlalchemy as sa
from conftest import admin_headers, make_settings, new_id, post_event

from bridge import audit
from bridge import config as config_module
from bridge.kyc import renewal, standing
from bridge.outbox import notify, renew
from bridge.outbox.upkeep import Upkeep
from bridge.outbox.worker import Worker
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import AuditEntry, Inquiry, Job, RenewalNotice
from bridge.web import create_app

T = datetime(2025, 1, 10, 9, 0, tzinfo=timezone.utc)  # the approval
DAY = timedelta(days=1)
EMAIL = "rene@example.com"


def with_renewals(base: config_module.Config, days: int = 365) -> config_module.Config:
    investor = replace(base.user_types["investor"], reverify_after_days=days)
    return replace(base, user_types=MappingProxyType({**base.user_types, "investor": investor}))


@pytest.fixture
def config() -> config_module.Config:  # the runtime fixtures take this one: investors re-verify yearly
    return with_renewals(config_module.load(None))


class Clock:
    def __init__(self, at: datetime):
        self.now = at

    def __call__(self) -> datetime:
        return self.now


# ---------------------------------------------------------------------- the pure rule


def test_the_deadline_and_the_lapse_rule() -> None:
    days = {"investor": 365}
    assert renewal.deadline("approved", "investor", T, days) == T + 365 * DAY
    assert renewal.deadline("approved", "customer", T, days) is None  # no renewals for the type
    assert renewal.deadline("declined", "investor", T, days) is None
    assert not renewal.lapsed_at(T + 365 * DAY, T + 365 * DAY - timedelta(seconds=1))
    assert renewal.lapsed_at(T + 365 * DAY, T + 365 * DAY)  # the deadline itself is lapsed


def test_the_notice_window_is_the_smallest_reached_and_none_from_the_deadline() -> None:
    deadline = T + 365 * DAY
    windows = (30, 7)
    assert renewal.notice_window(windows, deadline, T + 334 * DAY) is None
    assert renewal.notice_window(windows, deadline, T + 335 * DAY) == 30
    assert renewal.notice_window(windows, deadline, T + 358 * DAY - timedelta(seconds=1)) == 30
    assert renewal.notice_window(windows, deadline, T + 358 * DAY) == 7
    assert renewal.notice_window(windows, deadline, T + 364 * DAY) == 7  # a missed 30 is not sent late
    assert renewal.notice_window(windows, deadline, deadline) is None
    assert renewal.notice_window((), deadline, T + 360 * DAY) is None
    assert renewal.days_left(deadline, T + 335 * DAY) == 30
    assert renewal.days_left(deadline, deadline - timedelta(hours=1)) == 1


@dataclass
class Row:
    id: int
    status: str
    user_type: str
    level: str | None
    decided_at: datetime | None
    created_at: datetime
    monitoring_kind: str | None = None
    monitoring_report_id: str | None = None
    monitoring_since: datetime | None = None
    monitoring_event_at: datetime | None = None


def test_the_standing_is_expired_until_a_newer_approval() -> None:
    policy = renewal.Policy({"investor": 365}, T + 365 * DAY)
    old = Row(1, "approved", "investor", "enhanced", T, T)
    assert standing.status_shown(old, None) == "approved"  # renewals not asked: never lapses
    assert standing.status_shown(standing.speaking_inquiry([old], policy), policy) == "expired"
    pending = Row(2, "pending", "investor", "enhanced", T + 360 * DAY, T + 360 * DAY)
    assert standing.speaking_inquiry([old, pending], policy) is old  # still expired while renewing
    renewed = Row(3, "approved", "investor", "enhanced", T + 364 * DAY, T + 364 * DAY)
    assert standing.status_shown(standing.speaking_inquiry([old, pending, renewed], policy), policy) == "approved"
    customer = Row(4, "approved", "customer", "basic", T, T)  # a live approval of a type without renewals
    assert standing.speaking_inquiry([old, customer], policy) is customer
    matched = replace(old, monitoring_kind="watchlist", monitoring_report_id="rep_1",
                      monitoring_since=T + DAY, monitoring_event_at=T + DAY)
    assert standing.status_shown(matched, policy) == "expired" and not standing.in_monitoring_review(matched, policy)
    assert standing.in_monitoring_review(matched, renewal.Policy({"investor": 365}, T + 2 * DAY))


# ---------------------------------------------------------------------- through the store


def approve(client, config, inquiry_id: str, at: datetime) -> None:  # type: ignore[no-untyped-def]
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status="approved", created_at=at,
                                 email=EMAIL, first_name="René", template_id=config.user_types["investor"].template_id)
    assert post_event(client, body).status_code == 200


def kyc(client, **params: str) -> dict:  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/contacts/{EMAIL}/kyc", query_string=params, headers=admin_headers()).get_json()


def n8n_payloads(runtime, type_: str) -> list[dict]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        payloads = [json.loads(p) for p in session.scalars(
            sa.select(Job.payload).where(Job.kind == queue.N8N_EVENT).order_by(Job.id))]
    return [p for p in payloads if p["type"] == type_]


def count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def audit_of(runtime, action: str) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        assert audit.verify(session).ok
        return list(session.scalars(sa.select(AuditEntry.detail).where(AuditEntry.action == action)))


def run_pass(runtime, config) -> renew.Report:  # type: ignore[no-untyped-def]
    return renew.run(runtime.sessions, config, now=runtime.clock(), notices=True)


def test_notices_then_the_lapse_then_a_new_approval(crm_runtime, config, fluentcrm) -> None:  # type: ignore[no-untyped-def]
    runtime = crm_runtime
    clock = runtime.clock = Clock(T)
    client = create_app(runtime=runtime).test_client()
    approve(client, config, "inq_ren1", T)
    Worker(runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == {"kyc-approved", "kyc-type-investor"}
    assert kyc(client)["reverify_by"] == "2026-01-10T09:00:00Z"

    clock.now = T + 334 * DAY
    assert run_pass(runtime, config) == renew.Report(0, 0, 0)
    clock.now = T + 335 * DAY  # 30 days before the deadline
    assert run_pass(runtime, config) == renew.Report(1, 0, 0)
    assert run_pass(runtime, config) == renew.Report(0, 0, 1)  # a second run: still one
    assert len(n8n_payloads(runtime, "kyc.renewal_due")) == 1
    clock.now = T + 358 * DAY  # the 7-day window
    assert run_pass(runtime, config).notices == 1
    assert run_pass(runtime, config).notices == 0
    with transaction(runtime.sessions) as session:
        assert sorted(session.scalars(sa.select(RenewalNotice.window_days))) == [7, 30]
    clock.now = T + 365 * DAY - timedelta(seconds=1)
    assert (kyc(client)["status"], kyc(client)["lapsed"]) == ("approved", False)

    clock.now = T + 365 * DAY  # the deadline: the gate closes at once, whether the pass ran or not
    answer = kyc(client)
    assert (answer["status"], answer["may_retry"], answer["lapsed"]) == ("expired", True, True)
    assert kyc(client, user_type="investor")["status"] == "expired"
    assert run_pass(runtime, config) == renew.Report(0, 1, 0)
    assert run_pass(runtime, config) == renew.Report(0, 0, 0)  # recorded once
    lapses = audit_of(runtime, "inquiry.lapsed")
    assert len(lapses) == 1 and json.loads(lapses[0])["to"] == "expired"
    assert EMAIL not in lapses[0] and "René" not in lapses[0]
    assert n8n_payloads(runtime, "kyc.expired") == [renew.lapse_payload("inq_ren1", T + 365 * DAY)]
    Worker(runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == {"kyc-expired", "kyc-type-investor"}

    clock.now = T + 367 * DAY  # a new verification, approved
    approve(client, config, "inq_ren2", T + 367 * DAY)
    assert kyc(client)["status"] == "approved" and kyc(client)["reverify_by"] == "2027-01-12T09:00:00Z"
    Worker(runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == {"kyc-approved", "kyc-type-investor"}
    assert run_pass(runtime, config) == renew.Report(0, 0, 0)


def test_off_by_default_nothing_happens(database_url) -> None:  # type: ignore[no-untyped-def]
    default = config_module.load(None)
    runtime = Runtime.build(make_settings(database_url), default)
    try:
        runtime.clock = Clock(T)
        client = create_app(runtime=runtime).test_client()
        approve(client, default, "inq_off", T)
        runtime.clock.now = T + 3650 * DAY
        assert renew.run(runtime.sessions, default, now=runtime.clock(), notices=True) == renew.Report(0, 0, 0)
        assert kyc(client)["status"] == "approved" and kyc(client)["reverify_by"] is None
        assert count(runtime, RenewalNotice) == 0 and not audit_of(runtime, "inquiry.lapsed")
    finally:
        runtime.engine.dispose()


def test_the_notice_event_carries_a_fresh_link_and_is_not_sent_once_renewed(runtime, client, config) -> None:  # type: ignore[no-untyped-def]
    from test_n8n_events import assert_valid

    approve(client, config, "inq_ren3", T)
    assert renew.run(runtime.sessions, config, now=T + 340 * DAY).notices == 1
    payload = n8n_payloads(runtime, "kyc.renewal_due")[0]
    prepared = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=T + 340 * DAY)
    assert not isinstance(prepared, str)
    event = prepared.event
    assert_valid(event)
    assert event["type"] == "kyc.renewal_due" and event["inquiry"]["id"] == "inq_ren3"
    assert event["renewal"] == {"due_at": "2026-01-10T09:00:00.000Z", "days_left": 25}
    assert event["links"]["verify"].startswith(config.public_url + "/verify/")
    assert event["contact"]["email"] == EMAIL

    approve(client, config, "inq_ren4", T + 345 * DAY)  # renewed before the email went out
    skipped = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=T + 345 * DAY)
    assert isinstance(skipped, str) and "superseded" in skipped


def test_the_lapse_event_is_a_schema_valid_expired_with_a_link(runtime, client, config) -> None:  # type: ignore[no-untyped-def]
    from test_n8n_events import assert_valid

    strict = replace(config, retry_allowed=MappingProxyType({**config.retry_allowed, "expired": False}))
    approve(client, config, "inq_ren5", T)
    assert renew.run(runtime.sessions, strict, now=T + 400 * DAY).lapsed == 1
    prepared = notify.prepare(runtime.sessions, strict, n8n_payloads(runtime, "kyc.expired")[0], secret_key="k",
                              now=T + 400 * DAY)
    assert not isinstance(prepared, str)
    assert_valid(prepared.event)
    assert prepared.event["inquiry"]["status"] == "expired"
    assert prepared.event["renewal"] == {"due_at": "2026-01-10T09:00:00.000Z", "days_left": 0}
    # a lapsed approval may always verify again, whatever [onboarding.retry] says of expired inquiries
    assert prepared.event["links"]["verify"] is not None


def test_without_n8n_the_scheduled_pass_records_lapses_but_no_notices(runtime, client, config) -> None:  # type: ignore[no-untyped-def]
    approve(client, config, "inq_ren6", T)
    approve(client, config, "inq_ren7", T + 30 * DAY)  # the newer approval of the type counts
    runtime.clock = Clock(T + 390 * DAY)  # in the 7-day window of inq_ren7
    [ran] = [r for r in Upkeep(runtime).tick() if r.task == "renew"]
    assert ran.outcome == "done" and "renewal notices off" in ran.detail
    assert count(runtime, RenewalNotice) == 0
    runtime.clock = Clock(T + 395 * DAY)
    [ran] = [r for r in Upkeep(runtime).tick() if r.task == "renew"]
    assert "1 approval(s) lapsed" in ran.detail
    with transaction(runtime.sessions) as session:
        lapsed = dict(session.execute(sa.select(Inquiry.inquiry_id, Inquiry.lapsed_at)).all())
    assert lapsed == {"inq_ren6": None, "inq_ren7": T + 395 * DAY}  # the older approval was renewed by the newer


def test_the_admin_reads_show_a_lapsed_approval_as_expired(runtime, client, config) -> None:  # type: ignore[no-untyped-def]
    """The admin list, its status filter, the counts and the review queue say what the gate says:
    a monitoring match holds the approval in review until the approval lapses; then it is expired."""
    approve(client, config, "inq_ren9", T)
    report = samples.report_event(event_id=new_id("evt"), report_id="rep_ren9", inquiry_id="inq_ren9",
                                  created_at=T + 100 * DAY)
    assert post_event(client, report).status_code == 200

    def listed(status: str) -> list[tuple[str, str]]:
        items = client.get(f"/api/v1/inquiries?status={status}", headers=admin_headers()).get_json()["items"]
        return [(i["inquiry_id"], i["status"]) for i in items]

    runtime.clock = lambda: T + 200 * DAY
    assert listed("needs_review") == [("inq_ren9", "needs_review")] and listed("approved") == []
    runtime.clock = lambda: T + 365 * DAY
    assert kyc(client)["status"] == "expired"
    assert listed("expired") == [("inq_ren9", "expired")]
    assert listed("needs_review") == [] and listed("approved") == []
    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    assert stats["counts"] == {"expired": 1} and stats["review_total"] == 0
