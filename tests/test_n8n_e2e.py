"""End to end in a real n8n: signed Persona webhook in → bridge → outbox worker → n8n (the shipped
flows, imported with the shipped credential templates) → SMTP sink.

One n8n for the module (fresh database, free ports on 127.0.0.1, every outside call off; started
after import and publish), an aiosmtpd sink, and the bridge on SQLite. Every process started here
is stopped at the end. Needs the pinned install (scripts/n8n-install.sh): skipped without it, a
failure under CI=true. (A shop order's link is the plugin's kyc.link_requested event, emailed by
the event flow: test_link_requested_event_emails_the_link.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from string import Template
from types import MappingProxyType
from typing import TYPE_CHECKING

import pytest
import requests
import sqlalchemy as sa

from bridge.outbox import notify, remind, renew, review_sla
from bridge.consent import onboarding
from bridge.config import load as load_config
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.store import migrate, queue
from bridge.store.models import Job
from bridge.web import create_app
from bridge.outbox.worker import Worker, n8n_event_handler
from conftest import make_settings, new_id, post_event, unavailable
from doubles.n8n import FLOWS, N8nInstance, find_install

if TYPE_CHECKING:
    from doubles.smtp import SmtpSink

N8N_TOKEN = "e2e-n8n-token-" + "x" * 16
SIGNING_SECRET = "e2e-signing-secret"
VARIABLES = {"KYC_MAIL_FROM": "Acme KYC <kyc@acme.test>", "KYC_COMPLIANCE_EMAIL": "compliance@acme.test",
             "KYC_BRAND": "Acme"}
EVENTS_FLOW = "kycEvents0000001"
# Every sender here is done once it has answered: the flow answers after its Send email node,
# the catcher stores a mail before it answers 250, and the bridge's drain waits for n8n's answer.
# So what the catcher holds after those calls returned is all that was sent: no quiet period.


@dataclass
class Stack:
    n8n: N8nInstance
    smtp: SmtpSink
    runtime: Runtime  # the worker's: N8N_* point at the published flow
    client: object  # Flask test client for Persona's webhooks into the same store

    def drain(self) -> list:
        return [o for o in Worker(self.runtime).drain() if o.kind == queue.N8N_EVENT]


def credentials(smtp_port: int) -> list[dict]:
    """The shipped template, filled in the way README tells an operator to."""
    text = Template((FLOWS / "credentials.template.json").read_text()).substitute(
        N8N_TOKEN=N8N_TOKEN, N8N_SIGNING_SECRET=SIGNING_SECRET, SMTP_USER="", SMTP_PASSWORD="",
        SMTP_HOST="127.0.0.1")
    filled = json.loads(text)
    for credential in filled:
        if credential["type"] == "smtp":  # the sink speaks plain SMTP without auth or TLS
            credential["data"].update(port=smtp_port, secure=False, disableStartTls=True)
    return filled


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    install = find_install()
    if install is None:
        unavailable("n8n is not installed (run scripts/n8n-install.sh)")
    try:
        from doubles.smtp import SmtpSink
    except ImportError:
        unavailable("aiosmtpd is not installed (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("e2e")
    database = f"sqlite:///{folder / 'bridge.db'}"
    migrate.upgrade(database)
    bundled = load_config(None)  # investors re-verify yearly (renewals); nothing else changes
    config = replace(bundled, user_types=MappingProxyType({**bundled.user_types, "investor": replace(
        bundled.user_types["investor"], reverify_after_days=365)}))
    smtp = SmtpSink()
    n8n = N8nInstance(install, folder / "n8n")
    runtime: Runtime | None = None
    try:
        smtp.start()
        n8n.import_credentials(credentials(smtp.port))
        n8n.import_workflows(FLOWS / "workflows")
        n8n.set_variables(VARIABLES)
        n8n.publish(EVENTS_FLOW)
        assert sorted(n8n.active_workflows()) == [EVENTS_FLOW]
        n8n.start(webhook_paths=("kyc-events",))
        # The worker's side: events go to the published flow's production URL.
        runtime = Runtime.build(make_settings(database, N8N_WEBHOOK_URL=n8n.webhook_url("kyc-events"),
                                              N8N_TOKEN=N8N_TOKEN, N8N_SIGNING_SECRET=SIGNING_SECRET), config)
        yield Stack(n8n, smtp, runtime, create_app(runtime=runtime).test_client())
    finally:
        pid = n8n.pid
        n8n.stop()
        smtp.stop()
        if runtime is not None:
            runtime.engine.dispose()
        if pid is not None:  # n8n and its task runner are gone
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)


T0 = datetime.now(timezone.utc) - timedelta(minutes=30)


def deliver(stack: Stack, status: str, *, inquiry_id: str, email: str, user_type: str, first_name: str = "Pat",
            minutes: int = 1) -> dict:
    """A signed Persona webhook into the bridge; returns its body."""
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=T0 + timedelta(minutes=minutes), email=email, first_name=first_name,
                                 template_id=stack.runtime.config.user_types[user_type].template_id)
    response = post_event(stack.client, body)
    assert response.status_code == 200 and response.get_json()["status"] == "stored"
    return body


def one_mail(stack: Stack):
    """Exactly one email was sent (see above: nothing more can still be on its way)."""
    mails = stack.smtp.take()
    assert len(mails) == 1, [m["Subject"] for m in mails]
    mail = mails[0]
    assert mail["From"] == VARIABLES["KYC_MAIL_FROM"]
    body = mail.get_content()
    assert "sent automatically with n8n" not in body.lower()  # appendAttribution is off
    return mail, body


def no_mail(stack: Stack) -> None:
    assert [m["Subject"] for m in stack.smtp.take()] == []


def link_in(body: str, stack: Stack, email: str, user_type: str) -> str:
    urls = re.findall(r"http://127\.0\.0\.1:8000/verify/\S+", body)
    assert len(urls) == 1, body
    target = onboarding.resolve_link(stack.runtime.sessions, stack.runtime.config,
                                     secret_key=stack.runtime.settings.secret_key, token=urls[0].rsplit("/", 1)[1],
                                     now=datetime.now(timezone.utc))
    assert (target.email, target.user_type) == (email, user_type)
    return urls[0]


SCENARIOS = [
    # status, user type, recipient ("person" or the compliance address), subject, a text the body holds
    ("approved", "customer", "person", "You are verified: welcome to Acme", "place orders"),
    ("approved", "cooperative_member", "person", "Welcome to the cooperative, Pat", "membership"),
    ("approved", "investor", "person", "Your investor verification is approved", "investment"),
    ("approved", "contributor", "person", "You are verified: welcome to the team", "onboarding"),
    ("approved", "vendor", "person", "Your vendor verification is approved", "vendor instance"),
    ("declined", "customer", "person", "We could not verify your identity", "What to do next"),
    ("failed", "intern", "person", "Your identity verification did not go through", "What to do next"),
    ("needs_review", "investor", "compliance", "KYC review needed: {inquiry} (investor), due {due}", "{dashboard}"),
    ("expired", "customer", "person", "Your identity verification expired: pick it up again", "continue"),
]


@pytest.mark.parametrize("status, user_type, to, subject, text", SCENARIOS,
                         ids=[f"{s[0]}-{s[1]}" for s in SCENARIOS])
def test_status_change_sends_its_email_once_and_repeats_send_nothing(stack, status, user_type, to, subject, text):
    inquiry_id, email = new_id("inq"), f"{new_id('p')}@example.com"
    webhook = deliver(stack, status, inquiry_id=inquiry_id, email=email, user_type=user_type)
    [outcome] = stack.drain()
    assert outcome.outcome == "done" and outcome.detail.endswith("n8n answered 202 accepted"), outcome
    mail, body = one_mail(stack)
    due = (T0 + timedelta(minutes=1, hours=24)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    dashboard = f"{stack.runtime.config.dashboard_url}/{inquiry_id}"
    assert mail["To"] == (email if to == "person" else VARIABLES["KYC_COMPLIANCE_EMAIL"])
    assert mail["Subject"] == subject.format(inquiry=inquiry_id, due=due)
    assert text.format(dashboard=dashboard) in body
    if status in ("failed", "expired"):
        link_in(body, stack, email, user_type)
    if status == "declined":  # [onboarding.retry] declined = false by default: no retry link, a person looks
        assert "/verify/" not in body and "a person looks at your case" in body
    if to == "compliance":
        assert email in body and "Review deadline" in body
    # at-least-once: the same event again (a worker that lost its lease, an operator's retry) is dropped
    with stack.runtime.sessions() as session:
        job = session.scalars(sa.select(Job).where(Job.kind == queue.N8N_EVENT, Job.inquiry_id == inquiry_id)).one()
    rerun = n8n_event_handler(stack.runtime)(queue.ClaimedJob(job.id, job.kind, job.inquiry_id,
                                                              json.loads(job.payload), 2, 8, "rerun"))
    assert rerun.endswith("n8n answered 200 duplicate")
    # and Persona delivering the same webhook again is a no-op in the bridge already
    assert post_event(stack.client, webhook).get_json()["status"] == "duplicate"
    assert stack.drain() == []
    no_mail(stack)


def test_a_monitoring_match_alerts_compliance_and_never_the_person(stack):
    inquiry_id, email = new_id("inq"), f"{new_id('p')}@example.com"
    deliver(stack, "approved", inquiry_id=inquiry_id, email=email, user_type="investor")
    stack.drain()
    welcome, _ = one_mail(stack)
    assert welcome["To"] == email
    report = samples.report_event(event_id=new_id("evt"), report_id="rep_e2e1", inquiry_id=inquiry_id,
                                  created_at=T0 + timedelta(minutes=5))
    assert post_event(stack.client, report).status_code == 200
    outcomes = [o for o in stack.drain() if o.kind == queue.N8N_EVENT]
    assert [o.outcome for o in outcomes] == ["done"], outcomes
    mail, body = one_mail(stack)
    assert mail["To"] == VARIABLES["KYC_COMPLIANCE_EMAIL"]
    assert mail["Subject"].startswith(f"KYC monitoring match: {inquiry_id} (watchlist)")
    assert "rep_e2e1" in body and email in body and f"{stack.runtime.config.dashboard_url}/{inquiry_id}" in body


def test_an_overdue_review_alerts_compliance_once(stack):
    inquiry_id, email = new_id("inq"), f"{new_id('r')}@example.com"
    target = stack.runtime.config.review.target_for("enhanced")
    deliver(stack, "needs_review", inquiry_id=inquiry_id, email=email, user_type="investor",
            minutes=-60 * target)  # flagged a target's time before T0: overdue now
    stack.drain()
    flagged, _ = one_mail(stack)  # the "review needed" alert
    assert flagged["To"] == VARIABLES["KYC_COMPLIANCE_EMAIL"]
    now = datetime.now(timezone.utc)
    assert review_sla.run(stack.runtime.sessions, stack.runtime.config, now=now).queued == 1
    assert [o.outcome for o in stack.drain()] == ["done"]
    mail, body = one_mail(stack)
    assert mail["To"] == VARIABLES["KYC_COMPLIANCE_EMAIL"]
    assert mail["Subject"].startswith(f"KYC review overdue: {inquiry_id} (investor), due ")
    assert email in body and f"{stack.runtime.config.dashboard_url}/{inquiry_id}" in body
    assert review_sla.run(stack.runtime.sessions, stack.runtime.config, now=now).queued == 0  # once per case
    assert stack.drain() == []
    no_mail(stack)


def test_stalled_verification_gets_a_reminder_with_a_resume_link(stack):
    email = f"{new_id('s')}@example.com"
    started = datetime.now(timezone.utc) - timedelta(hours=25)
    onboarding.start_session(stack.runtime.sessions, stack.runtime.config, secret_key=stack.runtime.settings.secret_key,
                             environment_id=None, persona=None, now=started,
                             request=onboarding.SessionRequest(email=email, user_type="customer", first_name="Sam",
                                                               consent=onboarding.ConsentAnswers(True, True, True, None)))
    report = remind.run(stack.runtime.sessions, stack.runtime.config, now=datetime.now(timezone.utc))
    assert report.queued == 1
    [outcome] = stack.drain()
    assert outcome.outcome == "done", outcome
    mail, body = one_mail(stack)
    assert (mail["To"], mail["Subject"]) == (email, "Finish your identity verification")
    assert body.startswith("Hi Sam,")
    link_in(body, stack, email, "customer")
    assert remind.run(stack.runtime.sessions, stack.runtime.config, now=datetime.now(timezone.utc)).queued == 0
    assert stack.drain() == []
    no_mail(stack)


def approved_days_ago(stack: Stack, days: int, email: str) -> str:
    inquiry_id = new_id("inq")
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status="approved",
                                 created_at=datetime.now(timezone.utc) - timedelta(days=days), email=email,
                                 first_name="Rea", template_id=stack.runtime.config.user_types["investor"].template_id)
    assert post_event(stack.client, body).status_code == 200
    stack.drain()  # the welcome email of the old approval
    one_mail(stack)
    return inquiry_id


def test_renewal_due_and_the_lapse_email_the_person_a_fresh_link(stack):
    """Investors re-verify after 365 days: 25 days before, the renewal email; at the deadline, the
    lapse email (the approval's kyc.expired); each with a link that starts a new verification."""
    email = f"{new_id('r')}@example.com"
    approved_days_ago(stack, 340, email)
    report = renew.run(stack.runtime.sessions, stack.runtime.config, now=datetime.now(timezone.utc))
    assert (report.notices, report.lapsed) == (1, 0)
    [outcome] = stack.drain()
    assert outcome.outcome == "done", outcome
    mail, body = one_mail(stack)
    assert (mail["To"], mail["Subject"]) == (email, "Please renew your identity verification (25 days left)")
    assert body.startswith("Hi Rea,") and "25 days left" in body
    link_in(body, stack, email, "investor")
    assert renew.run(stack.runtime.sessions, stack.runtime.config, now=datetime.now(timezone.utc)).notices == 0
    assert stack.drain() == []
    no_mail(stack)

    lapsed = f"{new_id('x')}@example.com"
    approved_days_ago(stack, 366, lapsed)
    assert renew.run(stack.runtime.sessions, stack.runtime.config, now=datetime.now(timezone.utc)).lapsed == 1
    [outcome] = stack.drain()
    assert outcome.outcome == "done", outcome
    mail, body = one_mail(stack)
    assert (mail["To"], mail["Subject"]) == (lapsed, "Your identity verification has lapsed: please verify again")
    assert "has lapsed" in body
    link_in(body, stack, lapsed, "investor")


def test_link_requested_event_emails_the_link(stack):
    email = f"{new_id('l')}@example.com"
    onboarding.issue_link(stack.runtime.sessions, stack.runtime.config, secret_key=stack.runtime.settings.secret_key,
                          email=email, user_type="vendor", first_name="Lee", now=datetime.now(timezone.utc))
    with stack.runtime.sessions.begin() as session:
        contact_id = session.execute(sa.text("SELECT id FROM kyc_contacts WHERE email = :e"), {"e": email}).scalar()
        notify.request_link(session, stack.runtime.config, contact_id=contact_id, user_type="vendor",
                            now=datetime.now(timezone.utc))
    stack.drain()
    mail, body = one_mail(stack)
    assert (mail["To"], mail["Subject"]) == (email, "Verify your identity")
    link_in(body, stack, email, "vendor")


def wrong_runtime(stack: Stack, **settings: str) -> Runtime:
    values = {"N8N_WEBHOOK_URL": stack.n8n.webhook_url("kyc-events"), "N8N_TOKEN": N8N_TOKEN,
              "N8N_SIGNING_SECRET": SIGNING_SECRET, **settings}
    return Runtime.build(make_settings(stack.runtime.settings.database_url, **values), stack.runtime.config)


@pytest.mark.parametrize("settings, status, hint", [
    ({"N8N_TOKEN": "not-the-token"}, 403, "N8N_TOKEN"),
    ({"N8N_SIGNING_SECRET": "not-the-secret"}, 401, "N8N_SIGNING_SECRET"),
], ids=["wrong-token", "wrong-signing-secret"])
def test_wrong_credentials_are_refused_and_dead_lettered(stack, settings, status, hint):
    inquiry_id, email = new_id("inq"), f"{new_id('w')}@example.com"
    deliver(stack, "approved", inquiry_id=inquiry_id, email=email, user_type="customer")
    runtime = wrong_runtime(stack, **settings)
    try:
        outcomes = [o for o in Worker(runtime).drain() if o.kind == queue.N8N_EVENT]
    finally:
        runtime.engine.dispose()
    assert [o.outcome for o in outcomes] == ["dead"]
    assert f"n8n answered {status}" in outcomes[0].detail and hint in outcomes[0].detail
    no_mail(stack)
    # fixed configuration + `kyc-bridge jobs retry` → delivered once
    with stack.runtime.sessions.begin() as session:
        queue.requeue(session, [outcomes[0].job_id], now=datetime.now(timezone.utc))
    assert [o.outcome for o in stack.drain()] == ["done"]
    mail, _ = one_mail(stack)
    assert mail["To"] == email


def test_raw_calls_without_token_or_signature_are_refused(stack):
    url = stack.n8n.webhook_url("kyc-events")
    body = b'{"id":"kev_' + b"0" * 32 + b'","type":"kyc.approved"}'
    assert requests.post(url, data=body, timeout=10).status_code == 403
    assert requests.post(url, data=body, timeout=10, headers={"Authorization": "Bearer wrong"}).status_code == 403
    unsigned = requests.post(url, data=body, timeout=10, headers={"Authorization": f"Bearer {N8N_TOKEN}",
                                                                  "Content-Type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.json() == {"status": "bad_signature"}
    stale = int(time.time()) - 3600  # a replayed capture: right secret, old timestamp
    digest = hmac.new(SIGNING_SECRET.encode(), f"{stale}.".encode() + body, hashlib.sha256).hexdigest()
    replay = requests.post(url, data=body, timeout=10, headers={
        "Authorization": f"Bearer {N8N_TOKEN}", "Content-Type": "application/json",
        "X-KYC-Signature": f"t={stale},v1={digest}"})
    assert replay.status_code == 401
    no_mail(stack)


def test_smtp_outage_is_retried_until_the_email_goes_out_once(stack):
    inquiry_id, email = new_id("inq"), f"{new_id('o')}@example.com"
    deliver(stack, "declined", inquiry_id=inquiry_id, email=email, user_type="customer")
    stack.smtp.fail_with(451)
    try:
        [first] = stack.drain()
    finally:
        stack.smtp.fail_with(None)
    assert first.outcome == "retry" and "n8n answered 503" in first.detail
    no_mail(stack)
    with stack.runtime.sessions.begin() as session:  # the backoff has passed
        queue.requeue(session, [first.job_id], now=datetime.now(timezone.utc))
    assert [o.outcome for o in stack.drain()] == ["done"]
    mail, body = one_mail(stack)
    assert mail["To"] == email and mail["Subject"] == "We could not verify your identity"
