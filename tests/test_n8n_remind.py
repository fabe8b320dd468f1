"""`kyc-bridge remind`: stalled verifications get one `kyc.stalled` reminder per window, on every
store backend; the worker sends it with a resume link."""

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from click.testing import CliRunner

from bridge.outbox import events_out, remind
from bridge.store import queue
from bridge.consent import onboarding
from bridge.app.cli import main
from bridge.persona import samples
from bridge.store.models import Job, Reminder
from bridge.web import create_app
from bridge.outbox.worker import Worker
from conftest import ADMIN_TOKEN, WEBHOOK_SECRET, new_id, post_event
from test_n8n_events import assert_valid

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
CONSENT = onboarding.ConsentAnswers(True, True, True, None)


def start(runtime, email="pat@example.com", user_type="customer", at=T0, first_name="Pat"):
    """A person consents and is handed the Persona flow (a verification session) at `at`."""
    return onboarding.start_session(
        runtime.sessions, runtime.config, secret_key=runtime.settings.secret_key, environment_id=None, persona=None,
        request=onboarding.SessionRequest(email=email, user_type=user_type, consent=CONSENT, first_name=first_name),
        now=at)


def run(runtime, hours, **kwargs):
    return remind.run(runtime.sessions, runtime.config, now=T0 + timedelta(hours=hours), **kwargs)


def reminders(runtime):
    with runtime.sessions() as session:
        return [(r.user_type, r.window_hours, r.anchor_at) for r in session.scalars(
            sa.select(Reminder).order_by(Reminder.id))]


def webhook(runtime, config, status, at, *, inquiry_id="inq_r1", reference_id=None, email="pat@example.com",
            user_type="customer"):
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status, created_at=at,
                                 email=email, first_name="Pat", reference_id=reference_id,
                                 template_id=config.user_types[user_type].template_id)
    runtime.clock = lambda: at
    assert post_event(create_app(runtime=runtime).test_client(), body).status_code == 200


def test_due_window_is_the_largest_reached():
    windows = (24, 72)
    assert remind.due_window(windows, T0, T0 + timedelta(hours=23, minutes=59)) is None
    assert remind.due_window(windows, T0, T0 + timedelta(hours=24)) == 24
    assert remind.due_window(windows, T0, T0 + timedelta(hours=71)) == 24
    assert remind.due_window(windows, T0, T0 + timedelta(hours=100)) == 72
    assert remind.due_window((), T0, T0 + timedelta(hours=100)) is None


def test_each_window_reminds_once(runtime):
    start(runtime)
    assert run(runtime, 23).queued == 0
    first = run(runtime, 24)
    assert (first.queued, first.already_sent, first.stalled) == (1, 0, 1)
    for hours in (24, 25, 30, 71):  # cron keeps running: never twice for one window
        report = run(runtime, hours)
        assert (report.queued, report.already_sent) == (0, 1)
    assert run(runtime, 72).queued == 1
    assert run(runtime, 100).queued == 0
    assert run(runtime, 169).stalled == 0  # older than stalled_max_age_hours: left alone
    assert [(t, w) for t, w, _ in reminders(runtime)] == [("customer", 24), ("customer", 72)]
    with runtime.sessions() as session:
        jobs = session.scalars(sa.select(Job).where(Job.kind == queue.N8N_EVENT)).all()
    assert [json.loads(j.payload)["type"] for j in jobs] == ["kyc.stalled", "kyc.stalled"]
    assert all("pat" not in j.payload for j in jobs)


def test_cron_down_sends_only_the_latest_window(runtime):
    start(runtime)
    assert run(runtime, 80).queued == 1
    assert [w for _, w, _ in reminders(runtime)] == [72]


def test_dry_run_records_nothing(runtime):
    start(runtime)
    report = run(runtime, 30, dry_run=True)
    assert (report.queued, report.stalled) == (1, 1)
    assert reminders(runtime) == []
    assert run(runtime, 30).queued == 1


def test_a_concurrent_run_that_got_there_first_wins(runtime, monkeypatch):
    start(runtime)
    assert run(runtime, 30).queued == 1
    monkeypatch.setattr(remind, "_already_sent", lambda session, item: False)  # both runs saw it as new
    report = run(runtime, 30)
    assert (report.queued, report.already_sent) == (0, 1)  # the unique window key refused the second
    assert len(reminders(runtime)) == 1


def test_starting_again_moves_the_window(runtime):
    start(runtime)
    start(runtime, at=T0 + timedelta(hours=10))
    assert run(runtime, 24).queued == 0
    assert run(runtime, 34).queued == 1
    assert [a for _, _, a in reminders(runtime)] == [T0 + timedelta(hours=10)]


def test_progress_stops_reminders(runtime, config):
    reference = start(runtime).reference_id
    webhook(runtime, config, "completed", T0 + timedelta(hours=1), reference_id=reference)
    assert run(runtime, 30).stalled == 0


def test_an_unfinished_inquiry_is_stalled_and_named(runtime, config):
    reference = start(runtime).reference_id
    webhook(runtime, config, "pending", T0 + timedelta(minutes=5), reference_id=reference)
    assert run(runtime, 30).queued == 1
    with runtime.sessions() as session:
        assert session.scalars(sa.select(Reminder.inquiry_id)).one() == "inq_r1"


def test_started_without_a_recorded_consent_counts_too(runtime, config):
    webhook(runtime, config, "created", T0, inquiry_id="inq_direct", email="dana@example.com")
    assert run(runtime, 30).queued == 1


def test_approved_before_means_no_reminder(runtime, config):
    reference = start(runtime).reference_id
    webhook(runtime, config, "approved", T0 + timedelta(hours=1), reference_id=reference)
    start(runtime, at=T0 + timedelta(hours=2))  # clicks "verify" again although approved
    assert run(runtime, 40).stalled == 0


def test_other_user_types_are_separate(runtime, config):
    reference = start(runtime, user_type="customer").reference_id
    start(runtime, user_type="investor", at=T0)
    webhook(runtime, config, "approved", T0 + timedelta(hours=1), reference_id=reference)
    assert run(runtime, 30).queued == 1
    assert [t for t, _, _ in reminders(runtime)] == ["investor"]


def test_withdrawn_or_erased_people_are_not_reminded(runtime):
    start(runtime, email="gone@example.com")
    start(runtime, email="erased@example.com")
    onboarding.withdraw_consent(runtime.sessions, "gone@example.com", now=T0 + timedelta(hours=1))
    from bridge.consent import privacy

    with runtime.sessions.begin() as session:
        privacy.erase(session, "erased@example.com", redact_at_persona=False, max_attempts=8,
                      now=T0 + timedelta(hours=1))
    assert run(runtime, 30).stalled == 0


def test_no_windows_configured_means_no_reminders(runtime, config):
    from dataclasses import replace

    runtime.config = replace(config, n8n=replace(config.n8n, stalled_reminder_hours=()))
    start(runtime)
    assert run(runtime, 30).stalled == 0


# ------------------------------------------------------------------------------ sending


def test_worker_sends_the_reminder_with_a_resume_link(n8n_runtime, config, n8n):
    reference = start(n8n_runtime).reference_id
    webhook(n8n_runtime, config, "pending", T0 + timedelta(minutes=5), reference_id=reference)
    assert run(n8n_runtime, 24).queued == 0  # counted from the last activity (started at +5 min)
    assert run(n8n_runtime, 25).queued == 1
    n8n_runtime.clock = lambda: T0 + timedelta(hours=25)
    Worker(n8n_runtime).drain()
    [event] = n8n.accepted()
    assert_valid(event)
    assert event["type"] == "kyc.stalled" and event["contact"] == {"email": "pat@example.com", "first_name": "Pat"}
    assert event["inquiry"] == {"id": "inq_r1", "status": "pending", "user_type": "customer", "level": "basic"}
    assert event["links"]["dashboard"] == f"{config.dashboard_url}/inq_r1"
    assert event["id"] == events_out.stalled_event_id(1, "customer", T0 + timedelta(minutes=5), 24)
    token = event["links"]["verify"].rsplit("/", 1)[1]
    target = onboarding.resolve_link(n8n_runtime.sessions, config, secret_key=n8n_runtime.settings.secret_key,
                                     token=token, now=T0 + timedelta(hours=25))
    assert (target.email, target.user_type) == ("pat@example.com", "customer")
    # following the link resumes the unfinished inquiry (onboarding's rule), it does not start a new one
    resumed = start(n8n_runtime, at=T0 + timedelta(hours=26))
    assert resumed.resumed and resumed.inquiry_id == "inq_r1"


def test_reminder_for_someone_who_finished_meanwhile_is_skipped(n8n_runtime, config, n8n):
    reference = start(n8n_runtime).reference_id
    assert run(n8n_runtime, 24).queued == 1
    webhook(n8n_runtime, config, "completed", T0 + timedelta(hours=24, minutes=1), reference_id=reference)
    outcomes = [o for o in Worker(n8n_runtime).drain() if o.kind == queue.N8N_EVENT]
    assert outcomes[0].detail.startswith("skipped: no longer stalled")
    assert [e["type"] for e in n8n.accepted()] == []


# ------------------------------------------------------------------------------ the command


def cli_env(monkeypatch, runtime, **extra):
    env = {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "test-secret-key",
           "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN, "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, **extra}
    for name in ("N8N_WEBHOOK_URL", "N8N_TOKEN", "N8N_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_remind_command(runtime, monkeypatch):
    start(runtime, at=datetime.now(timezone.utc) - timedelta(hours=30))
    cli_env(monkeypatch, runtime)
    off = CliRunner().invoke(main, ["remind"])
    assert off.exit_code == 0 and "N8N_WEBHOOK_URL unset" in off.output
    dry = CliRunner().invoke(main, ["remind", "--dry-run"])
    assert dry.exit_code == 0 and "1 reminder(s) due (dry run" in dry.output
    assert reminders(runtime) == []
    cli_env(monkeypatch, runtime, N8N_WEBHOOK_URL="http://127.0.0.1:9/webhook/kyc-events", N8N_TOKEN="t",
            N8N_SIGNING_SECRET="s")
    first = CliRunner().invoke(main, ["remind"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("1 reminder(s) queued; 0 already sent") and "windows: 24 h, 72 h" in first.output
    again = CliRunner().invoke(main, ["remind"])
    assert again.output.startswith("0 reminder(s) queued; 1 already sent")
    assert "pat@" not in first.output + again.output
