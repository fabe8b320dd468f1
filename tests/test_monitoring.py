"""Continuous monitoring: a watchlist/PEP/adverse-media match puts an approved person back into
review until it is dismissed or a new approval comes; ordering and dedupe as for inquiries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bridge import audit
from bridge.kyc import monitoring
from bridge.kyc.monitoring import CLEAR, MATCH, Monitoring
from bridge.outbox import notify
from bridge.outbox.worker import Worker
from bridge.persona import events, samples
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import AuditEntry, Event, Job
from bridge.web import create_app
from conftest import admin_headers, new_id, post_event

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
EMAIL = "mo@example.com"


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ---------------------------------------------------------------------- the pure rule


@pytest.mark.parametrize(("name", "has_match", "expected"), [
    ("report/watchlist.matched", True, MATCH),
    ("report/watchlist.ready", True, MATCH),
    ("report/watchlist.ready", False, None),
    ("report/politically-exposed-person.ready", True, MATCH),
    ("report/adverse-media.matched", None, MATCH),
    ("report/watchlist.dismissed", True, CLEAR),
    ("report/watchlist.errored", None, None),
    ("report/phone-number.ready", True, None),
    ("inquiry.approved", None, None),
])
def test_the_verdict_of_a_report_event(name: str, has_match: bool | None, expected: str | None) -> None:
    assert monitoring.verdict(name, has_match) == expected


def test_a_match_counts_only_when_newer_than_the_approval_it_questions() -> None:
    match = Monitoring("watchlist", "rep_1", t(5), t(5))
    assert monitoring.in_force(match, "approved", t(1))
    assert not monitoring.in_force(match, "approved", t(6))  # a new approval since
    assert not monitoring.in_force(match, "declined", t(1))
    assert monitoring.effective_status(match, "approved", t(1)) == "needs_review"
    assert monitoring.effective_status(Monitoring(), "approved", t(1)) == "approved"


def test_older_report_events_and_dismissals_of_another_report_change_nothing() -> None:
    match = monitoring.apply(Monitoring(), "report/watchlist.matched", True, "rep_1", t(5))
    assert match == Monitoring("watchlist", "rep_1", t(5), t(5))
    assert monitoring.apply(match, "report/watchlist.dismissed", True, "rep_1", t(4)) is None  # older
    assert monitoring.apply(match, "report/watchlist.dismissed", True, "rep_2", t(6)) is None  # another report
    assert monitoring.apply(match, "report/watchlist.ready", False, "rep_1", t(6)) is None  # says nothing
    assert monitoring.apply(match, "report/watchlist.dismissed", True, "rep_1", t(6)) == Monitoring(
        None, None, None, t(6))


def test_the_parser_reads_has_match_and_the_inquiry_of_the_spec_examples() -> None:
    from conftest import SHARED

    folder = SHARED / "persona" / "payloads-openapi-2025-12-08"
    matched = events.parse((folder / "report_watchlist.matched.json").read_bytes())
    clean = events.parse((folder / "report_watchlist.ready.json").read_bytes())
    assert (matched.has_match, matched.related_inquiry_id) == (True, "inq_VVpTcAmqY1iHGYmB8gPrtNLf")
    assert matched.object_id.startswith("rep_") and clean.has_match is False


# ---------------------------------------------------------------------- through the webhook


def inquiry(client, config, inquiry_id: str, status: str, minutes: float) -> None:  # type: ignore[no-untyped-def]
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status, created_at=t(minutes),
                                 email=EMAIL, first_name="Mo", template_id=config.user_types["investor"].template_id)
    assert post_event(client, body).status_code == 200


def report(client, inquiry_id: str, minutes: float, *, action: str = "matched", has_match: bool = True,  # type: ignore[no-untyped-def]
           report_id: str = "rep_w1", kind: str = "watchlist", event_id: str | None = None) -> str:
    event_id = event_id or new_id("evt")
    body = samples.report_event(event_id=event_id, report_id=report_id, inquiry_id=inquiry_id, kind=kind,
                                action=action, has_match=has_match, created_at=t(minutes))
    assert post_event(client, body).status_code == 200
    return event_id


def kyc(client) -> dict:  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/contacts/{EMAIL}/kyc", headers=admin_headers()).get_json()


def n8n_types(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return [json.loads(payload)["type"]
                for payload in session.scalars(sa.select(Job.payload).where(Job.kind == queue.N8N_EVENT).order_by(Job.id))]


def audit_actions(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        assert audit.verify(session).ok
        return list(session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


def test_a_match_puts_an_approved_person_back_into_review_until_dismissed(client, runtime, config) -> None:  # type: ignore[no-untyped-def]
    inquiry(client, config, "inq_mon1", "approved", 0)
    assert kyc(client)["status"] == "approved" and kyc(client)["monitoring"] is None

    report(client, "inq_mon1", 10)

    answer = kyc(client)
    assert answer["status"] == "needs_review"
    assert answer["monitoring"] == {"kind": "watchlist", "report_id": "rep_w1", "since": "2025-06-01T12:10:00Z"}
    assert n8n_types(runtime) == ["kyc.approved", "kyc.monitoring_match"]
    assert audit_actions(runtime)[-1] == "inquiry.monitoring"

    report(client, "inq_mon1", 20, action="dismissed")

    assert kyc(client)["status"] == "approved" and kyc(client)["monitoring"] is None
    assert n8n_types(runtime) == ["kyc.approved", "kyc.monitoring_match"]  # nothing sent to anyone on a dismissal
    assert audit_actions(runtime).count("inquiry.monitoring") == 2


def test_a_new_approval_clears_a_match(client, config) -> None:  # type: ignore[no-untyped-def]
    inquiry(client, config, "inq_mon2", "approved", 0)
    report(client, "inq_mon2", 10, kind="politically-exposed-person", action="ready")
    assert kyc(client)["monitoring"]["kind"] == "politically-exposed-person"
    inquiry(client, config, "inq_mon2", "approved", 30)  # reviewed and approved again
    assert kyc(client)["status"] == "approved" and kyc(client)["monitoring"] is None


def test_a_report_without_a_match_and_a_repeat_change_nothing(client, runtime, config) -> None:  # type: ignore[no-untyped-def]
    inquiry(client, config, "inq_mon3", "approved", 0)
    report(client, "inq_mon3", 10, action="ready", has_match=False)
    assert kyc(client)["status"] == "approved"
    assert n8n_types(runtime) == ["kyc.approved"] and audit_actions(runtime)[-1] == "inquiry.status"
    first = report(client, "inq_mon3", 11)
    report(client, "inq_mon3", 11, event_id=first)  # the same event again
    with transaction(runtime.sessions) as session:
        syncs = session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == queue.CRM_SYNC))
        stored = session.scalar(sa.select(sa.func.count()).select_from(Event))
    assert n8n_types(runtime) == ["kyc.approved", "kyc.monitoring_match"]  # one alert for the match only
    assert audit_actions(runtime).count("inquiry.monitoring") == 1
    assert syncs == 1  # the approval's sync, not started yet, will carry the new state
    assert stored == 3


def test_a_dismissal_that_arrives_first_wins_over_the_older_match(client, config) -> None:  # type: ignore[no-untyped-def]
    inquiry(client, config, "inq_mon4", "approved", 0)
    report(client, "inq_mon4", 20, action="dismissed")
    report(client, "inq_mon4", 10)  # older, delivered late
    assert kyc(client)["status"] == "approved"


def test_a_match_that_arrives_before_the_approval_it_questions(client, runtime, config) -> None:  # type: ignore[no-untyped-def]
    inquiry(client, config, "inq_mon5", "completed", 0)
    report(client, "inq_mon5", 10)  # recorded, not yet in force: nothing is approved
    assert kyc(client)["status"] == "completed"
    inquiry(client, config, "inq_mon5", "approved", 5)  # the approval was earlier than the match
    assert kyc(client)["status"] == "needs_review"
    types = n8n_types(runtime)
    assert "kyc.approved" not in types and types[-1] == "kyc.monitoring_match"  # no welcome, one alert


def test_a_report_on_an_inquiry_never_seen_is_only_stored(client, runtime) -> None:  # type: ignore[no-untyped-def]
    report(client, "inq_unknown", 10)
    with transaction(runtime.sessions) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0
        assert session.scalar(sa.select(Event.inquiry_id)) == "inq_unknown"


def event_applied(runtime, event_id: str) -> bool:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return session.scalar(sa.select(Event.applied).where(Event.event_id == event_id))


def test_a_report_that_came_before_its_inquiry_applies_when_the_inquiry_arrives(client, runtime, config) -> None:  # type: ignore[no-untyped-def]
    early = report(client, "inq_early", 10)  # the inquiry is not known yet: stored without effect
    assert not event_applied(runtime, early)
    inquiry(client, config, "inq_early", "approved", 0)  # its approval, older than the match, comes later
    answer = kyc(client)
    assert answer["status"] == "needs_review"
    assert answer["monitoring"] == {"kind": "watchlist", "report_id": "rep_w1", "since": "2025-06-01T12:10:00Z"}
    assert n8n_types(runtime) == ["kyc.monitoring_match"]  # no welcome for an approval the match questions
    assert event_applied(runtime, early) and audit_actions(runtime).count("inquiry.monitoring") == 1
    report(client, "inq_early", 20, action="dismissed")  # and the usual rules from then on
    assert kyc(client)["status"] == "approved"


def test_an_early_report_follows_the_ordering_rules(client, runtime, config) -> None:  # type: ignore[no-untyped-def]
    report(client, "inq_early2", 10)
    report(client, "inq_early2", 12, action="dismissed")  # dismissed before the inquiry was known
    report(client, "inq_early3", 10)
    inquiry(client, config, "inq_early2", "approved", 0)
    inquiry(client, config, "inq_early3", "approved", 15)  # approved after the match: it no longer holds
    assert kyc(client)["status"] == "approved" and kyc(client)["monitoring"] is None
    assert n8n_types(runtime) == ["kyc.approved", "kyc.approved"]


def test_an_early_report_in_the_same_batch_applies_too(runtime, config) -> None:  # type: ignore[no-untyped-def]
    from bridge.intake import ingest

    def parsed(body: dict) -> tuple:  # type: ignore[type-arg]
        raw = samples.encode(body)
        return ingest.parse(raw), raw

    match = samples.report_event(event_id=new_id("evt"), report_id="rep_b", inquiry_id="inq_batch", kind="watchlist",
                                 action="matched", has_match=True, created_at=t(10))
    approval = samples.inquiry_event(event_id=new_id("evt"), inquiry_id="inq_batch", status="approved",
                                     created_at=t(0), email=EMAIL, first_name="Mo",
                                     template_id=config.user_types["investor"].template_id)
    results = ingest.ingest_many(runtime.engine, config, [parsed(match), parsed(approval)], now=t(11))
    assert [r.status_changed for r in results] == [False, True]
    assert n8n_types(runtime) == ["kyc.monitoring_match"]
    with transaction(runtime.sessions) as session:
        assert session.scalars(sa.select(Event.applied).order_by(Event.id)).all() == [True, True]


def test_fluentcrm_gets_the_review_and_monitoring_tags_then_loses_them(crm_runtime, config, fluentcrm) -> None:  # type: ignore[no-untyped-def]
    client = create_app(runtime=crm_runtime).test_client()
    inquiry(client, config, "inq_mon6", "approved", 0)
    Worker(crm_runtime).drain()
    report(client, "inq_mon6", 10)
    Worker(crm_runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == {"kyc-needs-review", "kyc-monitoring-match", "kyc-type-investor"}
    report(client, "inq_mon6", 20, action="dismissed")
    Worker(crm_runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == {"kyc-approved", "kyc-type-investor"}


def test_the_compliance_event_names_the_report_and_is_superseded_by_a_dismissal(runtime, client, config) -> None:  # type: ignore[no-untyped-def]
    inquiry(client, config, "inq_mon7", "approved", 0)
    report(client, "inq_mon7", 10)
    payload = notify.monitoring_match_payload("inq_mon7", "watchlist", "rep_w1", occurred_at=t(10))
    prepared = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=t(11), issue_links=False)
    assert not isinstance(prepared, str)
    assert prepared.event["type"] == "kyc.monitoring_match"
    assert prepared.event["monitoring"] == {"kind": "watchlist", "report_id": "rep_w1"}
    assert prepared.event["links"]["verify"] is None  # nothing for the person to act on
    report(client, "inq_mon7", 20, action="dismissed")
    skipped = notify.prepare(runtime.sessions, config, payload, secret_key="k", now=t(21), issue_links=False)
    assert isinstance(skipped, str) and "superseded" in skipped
