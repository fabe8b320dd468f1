"""`kyc-bridge reconcile`: Persona's event log repairs what webhooks missed, through the same intake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge import audit
from bridge.app import cli
from bridge.intake import reconcile
from bridge.kyc.timestamps import parse_since
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.sinks.persona_api import PersonaClient
from bridge.store.engine import transaction
from bridge.store.models import AuditEntry, Contact, Event, Inquiry, Job
from conftest import make_settings, new_id, post_event
from doubles.persona import FakePersona

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
TEMPLATE = "itmpl_investor00000000000000"  # not configured: tracked with user type unknown


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def event(inquiry_id: str, status: str, hours_ago: float, **person: str) -> dict:
    return samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=at(hours_ago), template_id=TEMPLATE, **person)


@pytest.fixture
def persona() -> Iterator[FakePersona]:
    with FakePersona() as fake:
        yield fake


@pytest.fixture
def reconcile_runtime(database_url: str, config, persona: FakePersona) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    rt = Runtime.build(make_settings(database_url, PERSONA_API_KEY=persona.api_key,
                                     PERSONA_API_BASE=persona.base_url), config)
    rt.clock = lambda: NOW
    yield rt
    rt.engine.dispose()


def client_for(persona: FakePersona, sleeps: list[float]) -> PersonaClient:
    return PersonaClient(persona.api_key, base_url=persona.base_url, timeout=5.0, sleep=sleeps.append)


def run(rt: Runtime, persona: FakePersona, *, since_hours: float = 72, page_size: int = 3,
        sleeps: list[float] | None = None) -> reconcile.Report:
    return reconcile.run(rt.engine, rt.config, client_for(persona, sleeps if sleeps is not None else []),
                         since=at(since_hours), now=rt.clock, page_size=page_size)


def snapshot(rt: Runtime) -> dict[str, object]:
    with transaction(rt.sessions) as session:
        return {
            "inquiries": sorted(session.execute(sa.select(Inquiry.inquiry_id, Inquiry.status)).all()),
            "events": session.scalar(sa.select(sa.func.count()).select_from(Event)),
            "jobs": session.scalar(sa.select(sa.func.count()).select_from(Job)),
            "audit": session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)),
        }


# ---------------------------------------------------------------------- the window


@pytest.mark.parametrize(("text", "expected"), [
    ("72h", NOW - timedelta(hours=72)), ("15m", NOW - timedelta(minutes=15)), ("7d", NOW - timedelta(days=7)),
    ("2026-12-01T00:00:00Z", datetime(2026, 12, 1, tzinfo=timezone.utc)),
    ("2026-12-01T01:00:00+01:00", datetime(2026, 12, 1, tzinfo=timezone.utc)),
])
def test_the_window_is_a_duration_back_or_a_time_with_its_zone(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "72", "h", "-5h", "3w", "2026-12-01T00:00:00", "yesterday", "٣h"])
def test_anything_else_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="72h|zone"):
        parse_since(text, NOW)


# ---------------------------------------------------------------------- repair


def test_reconcile_repairs_missed_decisions_and_people_never_heard_of(reconcile_runtime: Runtime,
                                                                      persona: FakePersona, client) -> None:  # type: ignore[no-untyped-def]
    rt = reconcile_runtime
    known, unknown, too_old = new_id("inq"), new_id("inq"), new_id("inq")
    delivered = [event(known, "created", 50, email="ada@example.com", first_name="Ada"),
                 event(known, "completed", 49, email="ada@example.com", first_name="Ada")]
    for body in delivered:  # these webhooks arrived; the approval did not
        assert post_event(client, body).status_code == 200
        persona.add_event(body)
    approval = event(known, "approved", 48, email="ada@example.com", first_name="Ada")
    persona.add_event(approval)
    for body in (event(unknown, "created", 30, email="bo@example.com", first_name="Bo"),
                 event(unknown, "completed", 29, email="bo@example.com", first_name="Bo"),
                 event(unknown, "declined", 28, email="bo@example.com", first_name="Bo")):
        persona.add_event(body)
    persona.add_event(event(too_old, "approved", 100, email="cy@example.com"))  # before the window
    for n in range(4):  # newer events of the same inquiries fill pages beyond the first
        persona.add_event(event(known, "approved", 20 - n, email="ada@example.com"))
    persona.rate_limit(count=1, retry_after=2)
    sleeps: list[float] = []

    report = run(rt, persona, sleeps=sleeps)

    assert sleeps == [2.0]  # the 429's Retry-After was honoured
    state = dict(snapshot(rt)["inquiries"])  # type: ignore[arg-type]
    assert state == {known: "approved", unknown: "declined"}  # too_old is outside the window
    assert report.new == 1 + 3 + 4 and report.changed_inquiries == {known, unknown}
    assert report.read == 2 + 1 + 3 + 4  # the two delivered events were read again, as duplicates
    with transaction(rt.sessions) as session:
        emails = set(session.scalars(sa.select(Contact.email)))
        kinds = sorted(session.scalars(sa.select(Job.kind)))
        received = session.execute(sa.select(AuditEntry.subject, AuditEntry.detail)
                                   .where(AuditEntry.action == "event.received")).all()
        assert audit.verify(session).ok
    assert emails == {"ada@example.com", "bo@example.com"}
    assert "crm.sync" in kinds  # the same jobs as for a webhook
    assert len(received) == report.new
    assert all(json.loads(detail)["source"] == "reconcile" for _, detail in received)
    assert {subject for subject, _ in received} == {known, unknown}
    # It read no further than the window: the page holding the too-old event was the last asked for.
    asked = [rec for rec in persona.requests if rec.path.endswith("/events") and rec.status == 200]
    assert len(asked) == report.pages and report.pages == 4  # 11 events in the log, 3 a page


def test_a_second_run_changes_nothing(reconcile_runtime: Runtime, persona: FakePersona) -> None:
    rt = reconcile_runtime
    inquiry = new_id("inq")
    for status, hours in (("created", 10), ("completed", 9), ("approved", 8)):
        persona.add_event(event(inquiry, status, hours, email="di@example.com"))
    persona.add_event(samples.report_event(event_id=new_id("evt"), report_id="rep_r1", inquiry_id=inquiry,
                                           created_at=at(7)))  # a monitoring match, missed as well
    first = run(rt, persona)
    before = snapshot(rt)
    asked = next(rec for rec in persona.requests if rec.path.endswith("/events"))
    assert {"inquiry.approved", "report/watchlist.matched"} <= set(asked.query["filter[name]"][0].split(","))

    second = run(rt, persona)

    assert (first.new, len(first.changed_inquiries)) == (4, 1)
    assert (second.read, second.new, second.changed_inquiries) == (4, 0, set())
    with transaction(rt.sessions) as session:
        assert session.scalar(sa.select(Inquiry.monitoring_report_id)) == "rep_r1"
    assert snapshot(rt) == before


def test_an_older_event_from_the_log_never_undoes_a_newer_decision(reconcile_runtime: Runtime,
                                                                   persona: FakePersona, client) -> None:  # type: ignore[no-untyped-def]
    rt = reconcile_runtime
    inquiry = new_id("inq")
    assert post_event(client, event(inquiry, "approved", 1, email="ed@example.com")).status_code == 200
    persona.add_event(event(inquiry, "pending", 5, email="ed@example.com"))  # missed, but older

    report = run(rt, persona)

    assert report.new == 1 and report.changed_inquiries == set()
    assert dict(snapshot(rt)["inquiries"]) == {inquiry: "approved"}  # type: ignore[arg-type]


def test_a_listed_event_that_is_not_storable_is_skipped_and_counted(reconcile_runtime: Runtime,
                                                                    persona: FakePersona) -> None:
    rt = reconcile_runtime
    broken = event(new_id("inq"), "approved", 3)
    broken["data"]["attributes"]["created-at"] = "not a time"
    persona.add_event(broken)
    persona.add_event(event(new_id("inq"), "approved", 2, email="fi@example.com"))

    report = run(rt, persona)

    assert (report.skipped, report.new) == (1, 1)


# ---------------------------------------------------------------------- the command


def cli_env(rt: Runtime, persona: FakePersona | None) -> dict[str, str]:
    settings = rt.settings
    env = {"BRIDGE_DATABASE_URL": settings.database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": "wbhsec_x", "PERSONA_API_KEY": "", "PERSONA_API_BASE": ""}
    if persona is not None:
        env.update(PERSONA_API_KEY=persona.api_key, PERSONA_API_BASE=persona.base_url)
    return env


def test_the_command_refuses_without_an_api_key_and_changes_nothing(reconcile_runtime: Runtime) -> None:
    before = snapshot(reconcile_runtime)
    result = CliRunner().invoke(cli.main, ["reconcile", "--since", "72h"], env=cli_env(reconcile_runtime, None))
    assert result.exit_code != 0
    assert "PERSONA_API_KEY" in result.output
    assert snapshot(reconcile_runtime) == before


def test_the_command_refuses_a_window_it_cannot_read(reconcile_runtime: Runtime, persona: FakePersona) -> None:
    result = CliRunner().invoke(cli.main, ["reconcile", "--since", "last week"],
                                env=cli_env(reconcile_runtime, persona))
    assert result.exit_code == 2 and "--since" in result.output
    assert not [rec for rec in persona.requests if rec.path.endswith("/events")]


def test_the_command_prints_a_summary_and_json(reconcile_runtime: Runtime, persona: FakePersona) -> None:
    inquiry = new_id("inq")
    recent = datetime.now(timezone.utc) - timedelta(hours=1)  # the command's clock is the real one
    persona.add_event(samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry, status="approved",
                                            created_at=recent, template_id=TEMPLATE, email="gu@example.com"))
    env = cli_env(reconcile_runtime, persona)

    text = CliRunner().invoke(cli.main, ["reconcile", "--since", "2h"], env=env)
    again = CliRunner().invoke(cli.main, ["reconcile", "--since", "2h", "--json"], env=env)

    assert text.exit_code == 0, text.output
    assert "1 event(s) read, 1 new, 1 inquiry state(s) changed" in text.output
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert {k: summary[k] for k in ("events_read", "new_events", "inquiries_changed")} == {
        "events_read": 1, "new_events": 0, "inquiries_changed": 0}


def test_the_command_says_what_persona_answered(reconcile_runtime: Runtime, persona: FakePersona) -> None:
    persona.inject(401, count=None)
    result = CliRunner().invoke(cli.main, ["reconcile", "--since", "1h"], env=cli_env(reconcile_runtime, persona))
    assert result.exit_code == 1
    assert "Persona's event log" in result.output and "401" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------- on schedule


def test_serve_and_worker_run_reconcile_on_schedule_over_the_window(reconcile_runtime: Runtime,
                                                                   persona: FakePersona) -> None:
    from dataclasses import replace

    from bridge.config import ScheduleConfig
    from bridge.outbox.upkeep import Upkeep

    rt = reconcile_runtime
    rt.config = replace(rt.config, schedule=ScheduleConfig(every_seconds={"reconcile": 900},
                                                           reconcile_window_seconds=6 * 3600))
    inside, outside = new_id("inq"), new_id("inq")
    persona.add_event(event(inside, "approved", 5, email="ha@example.com"))
    persona.add_event(event(outside, "approved", 7, email="ib@example.com"))  # older than the window

    ran = Upkeep(rt).tick()

    assert [(r.task, r.outcome) for r in ran] == [("reconcile", "done")]
    assert dict(snapshot(rt)["inquiries"]) == {inside: "approved"}  # type: ignore[arg-type]
    assert Upkeep(rt).tick() == []  # not due again before reconcile_every


def test_scheduled_reconcile_without_an_api_key_is_recorded_as_skipped(runtime: Runtime) -> None:
    from dataclasses import replace

    from bridge.config import ScheduleConfig
    from bridge.outbox.upkeep import Upkeep

    runtime.config = replace(runtime.config, schedule=ScheduleConfig(every_seconds={"reconcile": 900}))
    assert [r.task for r in Upkeep(runtime).tick()] == ["reconcile"]
    with transaction(runtime.sessions) as session:
        detail = session.scalar(sa.select(AuditEntry.detail).where(AuditEntry.action == "upkeep.ran"))
    assert json.loads(detail)["outcome"] == "skipped"


# ---------------------------------------------------------------------- erasure holds


def test_after_erasure_a_late_webhook_and_a_reconcile_keep_the_decision_not_the_data(
        reconcile_runtime: Runtime, persona: FakePersona, client) -> None:  # type: ignore[no-untyped-def]
    rt = reconcile_runtime
    inquiry = new_id("inq")
    person = {"email": "zoe.erased@example.com", "first_name": "Zoë"}
    assert post_event(client, event(inquiry, "completed", 10, **person)).status_code == 200
    assert client.post("/api/v1/contacts/zoe.erased@example.com/erase",
                       headers={"Authorization": "Bearer test-admin-token"}).status_code == 200
    late = event(inquiry, "needs_review", 9, **person)  # Persona retried it after the erasure
    assert post_event(client, late).status_code == 200
    persona.add_event(late)
    persona.add_event(event(inquiry, "approved", 8, **person))  # missed, found by reconcile

    report = run(rt, persona)

    assert report.new == 1 and dict(snapshot(rt)["inquiries"]) == {inquiry: "approved"}  # type: ignore[arg-type]
    with transaction(rt.sessions) as session:
        payloads = session.scalars(sa.select(Event.payload)).all()
        contacts = session.execute(sa.select(Contact.email, Contact.first_name)).all()
    assert contacts == [(None, None)]  # no new contact from the payload's email
    assert len(payloads) == 3 and not any(p and ("zoe" in p or "Zo" in p) for p in payloads)
