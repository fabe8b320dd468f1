"""Onboarding: consent before Persona, reference ids, resume, attempt limit, signed links, gating."""

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge.kyc import link_tokens
from bridge.app.cli import main
from bridge.persona import samples
from bridge.store.models import AuditEntry, Consent, Contact, Job
from bridge.outbox.worker import Worker
from conftest import ADMIN_TOKEN, admin_headers, new_id, post_event

CONSENT = {"share_with_persona": True, "persona_retention": True, "gdpr_processing": True}


def session_body(email="new.person@example.com", user_type="investor", **extra):
    return {"email": email, "user_type": user_type, "first_name": "Nia", "ip": "203.0.113.9",
            "user_agent": "pytest", "consent": {**CONSENT, "text_version": "2026-11-01"}, **extra}


def start(client, body=None, **kw):
    return client.post("/api/v1/sessions", json=body or session_body(**kw), headers=admin_headers())


def hosted_query(url):
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}", {k: v[0] for k, v in parse_qs(parsed.query).items()}


def test_session_records_consent_and_answers_what_the_page_needs(client, runtime, config):
    response = start(client)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    template = config.user_types["investor"].template_id
    assert body["template_id"] == template and body["reference_id"].startswith("kyc_")
    assert "@" not in body["reference_id"] and "new.person" not in body["reference_id"]
    assert body["fields"] == {"name-first": "Nia", "email-address": "new.person@example.com"}
    assert body["inquiry_id"] is None and body["session_token"] is None  # no PERSONA_API_KEY: no API call
    base, query = hosted_query(body["hosted_url"])
    assert base == "https://inquiry.withpersona.com/verify"
    assert query["inquiry-template-id"] == template and query["reference-id"] == body["reference_id"]
    assert query["redirect-uri"] == "http://127.0.0.1:8000/verify/done"
    assert query["fields[name-first]"] == "Nia"
    with runtime.sessions() as session:
        consent = session.scalars(sa.select(Consent)).one()
        assert (consent.share_with_persona, consent.persona_retention, consent.gdpr_processing) == (True, True, True)
        assert consent.text_version == "2026-11-01" and consent.text_sha256 == config.consent.sha256
        assert consent.ip_hash and "203.0.113.9" not in consent.ip_hash and consent.user_agent == "pytest"
        contact = session.scalars(sa.select(Contact)).one()
        assert contact.reference_id == body["reference_id"]
        assert "new.person" not in " ".join(a.detail for a in session.scalars(sa.select(AuditEntry)))


@pytest.mark.parametrize("missing", ["share_with_persona", "persona_retention", "gdpr_processing"])
def test_every_consent_box_is_required_and_nothing_is_recorded_without(client, runtime, missing):
    body = session_body()
    body["consent"][missing] = False
    response = start(client, body)
    assert response.status_code == 422
    assert response.get_json()["field"] == f"consent.{missing}" and missing in response.get_json()["error"]
    del body["consent"][missing]
    assert start(client, body).status_code == 422
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


@pytest.mark.parametrize("change, field", [
    ({"email": "not-an-email"}, "email"), ({"user_type": "astronaut"}, "user_type"),
    ({"consent": {**CONSENT, "text_version": "1999-01-01"}}, "consent.text_version"),
    ({"consent": "yes"}, "consent"), ({"wp_user_id": "seven"}, "wp_user_id"),
])
def test_bad_input_is_422_naming_the_field(client, change, field):
    response = start(client, session_body(**change) if "email" not in change else {**session_body(), **change})
    assert response.status_code == 422 and response.get_json()["field"] == field


def test_sessions_need_a_token_or_a_link(client):
    assert client.post("/api/v1/sessions", json=session_body()).status_code == 401
    assert client.post("/api/v1/sessions", json=session_body(),
                       headers={"Authorization": "Bearer nope"}).status_code == 401


def test_webhook_with_the_reference_id_lands_on_the_right_contact(client, runtime, config):
    reference_id = start(client).get_json()["reference_id"]
    # Persona's payload carries our reference id and no email at all (current generation, fields blocked)
    event = samples.inquiry_event(event_id=new_id("evt"), inquiry_id="inq_ref1", status="approved",
                                  created_at=datetime.now(timezone.utc), reference_id=reference_id,
                                  template_id=config.user_types["investor"].template_id)
    assert post_event(client, event).status_code == 200
    kyc = client.get("/api/v1/contacts/New.Person@example.com/kyc", headers=admin_headers()).get_json()
    assert kyc["status"] == "approved" and kyc["user_type"] == "investor" and kyc["level"] == "enhanced"
    assert kyc["decided_at"] is not None


def webhook(client, config, inquiry_id, status, minutes_ago=0, reference_id=None, user_type="investor"):
    event = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                  created_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
                                  reference_id=reference_id, template_id=config.user_types[user_type].template_id)
    assert post_event(client, event).status_code == 200


@pytest.mark.parametrize("status", ["created", "pending"])
def test_unfinished_inquiry_is_resumed_not_duplicated(client, runtime, config, status):
    first = start(client).get_json()
    webhook(client, config, "inq_open", status, reference_id=first["reference_id"])
    again = start(client).get_json()
    assert again["resumed"] is True and again["inquiry_id"] == "inq_open"
    _, query = hosted_query(again["hosted_url"])
    assert query["inquiry-id"] == "inq_open" and "inquiry-template-id" not in query
    assert again["attempts_used"] == 1  # a resume is not an attempt


def test_recently_expired_inquiry_is_resumed_old_one_is_not(client, runtime, config):
    first = start(client).get_json()
    webhook(client, config, "inq_exp", "expired", minutes_ago=60, reference_id=first["reference_id"])
    assert start(client).get_json()["inquiry_id"] == "inq_exp"
    webhook(client, config, "inq_exp2", "expired", minutes_ago=60 * 30, reference_id=first["reference_id"],
            user_type="vendor")
    vendor = start(client, user_type="vendor").get_json()
    assert vendor["resumed"] is False and vendor["inquiry_id"] is None


def test_three_attempts_per_type_then_manual_review_and_a_review_tag(client, runtime, config):
    reference = None
    for attempt in range(1, 4):
        body = start(client).get_json()
        assert body["attempts_used"] == attempt and body["attempts_allowed"] == 3
        reference = body["reference_id"]
        webhook(client, config, f"inq_try{attempt}", "failed", reference_id=reference)
    refused = start(client)
    assert refused.status_code == 409
    assert refused.get_json()["manual_review"] is True and "manual review" in refused.get_json()["error"]
    assert start(client, user_type="customer").status_code == 201  # the limit is per user type
    outcomes = Worker(runtime).drain()
    results = [o.detail for o in outcomes if o.kind == "crm.tag"]
    assert results == ["dry run: would attach kyc-manual-review; detach -"]


def test_link_round_trip_through_the_consent_page(client, runtime, config):
    created = client.post("/api/v1/links", json={"email": "Link.Person@example.com", "user_type": "vendor"},
                          headers=admin_headers())
    assert created.status_code == 201
    url = created.get_json()["url"]
    assert url.startswith("http://127.0.0.1:8000/verify/") and "link.person" not in url.lower()
    path = urlparse(url).path
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for box in ("share_with_persona", "persona_retention", "gdpr_processing"):
        assert f'<label for="{box}">' in html and f'id="{box}" name="{box}" value="yes" required' in html
    assert config.consent.share_with_persona in html
    partial = client.post(path, data={"share_with_persona": "yes", "persona_retention": "yes"})
    assert partial.status_code == 422 and "tick all three" in partial.get_data(as_text=True)
    done = client.post(path, data={box: "yes" for box in CONSENT} | {"text_version": config.consent.version})
    assert done.status_code == 303
    _, query = hosted_query(done.headers["Location"])
    assert query["inquiry-template-id"] == config.user_types["vendor"].template_id
    with runtime.sessions() as session:
        consent = session.scalars(sa.select(Consent)).one()
        assert consent.source == "link" and consent.user_type == "vendor"


def test_tampered_and_expired_links_get_a_clear_page(client, runtime, config):
    url = client.post("/api/v1/links", json={"email": "x@example.com", "user_type": "vendor"},
                      headers=admin_headers()).get_json()["url"]
    path = urlparse(url).path
    tampered = client.get(path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb"))
    assert tampered.status_code == 400 and "not valid" in tampered.get_data(as_text=True)
    assert "Traceback" not in tampered.get_data(as_text=True)
    runtime.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=config.link_ttl_hours + 1)
    expired = client.get(path)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    token = path.rsplit("/", 1)[1]
    with pytest.raises(link_tokens.LinkTokenError):
        link_tokens.verify("another-secret", token, max_age_seconds=3600)


def test_link_token_can_authorise_a_session_instead_of_the_bearer(client, config):
    url = client.post("/api/v1/links", json={"email": "tok@example.com", "user_type": "customer"},
                      headers=admin_headers()).get_json()["url"]
    token = url.rsplit("/", 1)[1]
    response = client.post("/api/v1/sessions", json={"link_token": token, "consent": CONSENT})
    assert response.status_code == 201 and response.get_json()["template_id"] == config.user_types["customer"].template_id
    bad = client.post("/api/v1/sessions", json={"link_token": token + "x", "consent": CONSENT})
    assert bad.status_code == 401


def test_redirect_back_page_never_trusts_the_query_string(client, runtime):
    page = client.get("/verify/done?inquiry-id=inq_x&status=completed&reference-id=kyc_x")
    assert page.status_code == 200 and "checking your documents" in page.get_data(as_text=True)
    with runtime.sessions() as session:
        assert session.scalar(sa.text("SELECT COUNT(*) FROM kyc_inquiries")) == 0


def test_public_routes_are_rate_limited_per_ip(client, runtime):
    from dataclasses import replace

    runtime.config = replace(runtime.config, rate_limit_per_ip="3 per minute")
    statuses = [client.get("/verify/done", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert client.get("/verify/done", environ_base={"REMOTE_ADDR": "198.51.100.8"}).status_code == 200


def test_limited_routes_tell_their_limit_and_when_to_retry(client, runtime):
    from dataclasses import replace

    runtime.config = replace(runtime.config, rate_limit_per_ip="3 per minute")
    answers = [client.get("/verify/done", environ_base={"REMOTE_ADDR": "198.51.100.9"}) for _ in range(4)]
    assert (answers[0].headers["X-RateLimit-Limit"], answers[0].headers["X-RateLimit-Remaining"]) == ("3", "2")
    assert answers[3].status_code == 429 and 0 < int(answers[3].headers["Retry-After"]) <= 60


def test_every_rate_limited_route_runs_the_limiters_hooks(app):
    """limits.init_app runs Flask-Limiter's header and teardown hooks for LIMITED_BLUEPRINTS only."""
    from bridge.web.limits import LIMITED_BLUEPRINTS, limiter

    decorated = limiter.limit_manager._decorated_limits  # Flask-Limiter's record of @limiter.limit
    limited = {endpoint.split(".")[0] for endpoint, view in app.view_functions.items()
               if any(key.startswith(f"{view.__module__}.{view.__name__}.") for key in decorated)}
    assert limited and limited <= set(LIMITED_BLUEPRINTS)


def test_limits_init_app_leaves_other_app_wide_hooks_app_wide():
    """Only Flask-Limiter's own hooks move to the limited blueprints; hooks registered before stay."""
    from flask import Flask

    from bridge.web import limits

    app = Flask("hooks")
    app.config["RATELIMIT_STORAGE_URI"] = "memory://"  # as create_app sets it
    own = {"before": lambda: None, "after": lambda response: response, "teardown": lambda exc: None}
    app.before_request(own["before"])
    app.after_request(own["after"])
    app.teardown_request(own["teardown"])
    limits.init_app(app)
    assert app.before_request_funcs[None] == [own["before"]]
    assert app.after_request_funcs[None] == [own["after"]]
    assert app.teardown_request_funcs[None] == [own["teardown"]]
    for name in limits.LIMITED_BLUEPRINTS:  # the limiter's header and teardown hooks, nothing of ours
        assert len(app.after_request_funcs[name]) == 1 and own["after"] not in app.after_request_funcs[name]
        assert len(app.teardown_request_funcs[name]) == 1 and own["teardown"] not in app.teardown_request_funcs[name]


def test_link_sessions_are_rate_limited_per_link(client, runtime):
    from dataclasses import replace

    runtime.config = replace(runtime.config, rate_limit_per_link="2 per minute")
    url = client.post("/api/v1/links", json={"email": "rl@example.com", "user_type": "customer"},
                      headers=admin_headers()).get_json()["url"]
    token = url.rsplit("/", 1)[1]
    statuses = [client.post("/api/v1/sessions", json={"link_token": token, "consent": CONSENT},
                            environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code for n in range(4)]
    assert statuses[:2] == [201, 201] and statuses[2:] == [429, 429]


def test_gating_lookup(client, config):
    unknown = client.get("/api/v1/contacts/nobody@example.com/kyc", headers=admin_headers()).get_json()
    assert unknown == {"email": "nobody@example.com", "status": "not_started", "user_type": None,
                       "level": None, "decided_at": None, "monitoring": None, "consent_withdrawn": False, "reverify_by": None,
                       "lapsed": False,
                       "may_retry": True}
    reference = start(client, user_type="customer").get_json()["reference_id"]
    webhook(client, config, "inq_cust", "approved", minutes_ago=10, reference_id=reference, user_type="customer")
    webhook(client, config, "inq_inv", "pending", minutes_ago=1, reference_id=reference)
    best = client.get("/api/v1/contacts/new.person@example.com/kyc", headers=admin_headers()).get_json()
    assert best["status"] == "approved" and best["user_type"] == "customer"  # an approval wins over newer pending
    investor = client.get("/api/v1/contacts/new.person@example.com/kyc?user_type=investor", headers=admin_headers())
    assert investor.get_json()["status"] == "pending"
    assert client.get("/api/v1/contacts/nope/kyc", headers=admin_headers()).status_code == 400
    assert client.get("/api/v1/contacts/a@example.com/kyc").status_code == 401


def test_withdrawal_stops_crm_effects(client, runtime, config, monkeypatch):
    reference = start(client).get_json()["reference_id"]
    response = client.delete("/api/v1/contacts/new.person@example.com/consent", headers=admin_headers())
    assert response.status_code == 200
    webhook(client, config, "inq_w", "approved", reference_id=reference)
    # the CRM sync attaches nothing (it only takes KYC tags away) and the n8n event stops
    outcomes = [(o.kind, o.detail) for o in Worker(runtime).drain()]
    assert outcomes[0][0] == "crm.sync" and outcomes[0][1].startswith("dry run: would attach -; detach ")
    assert outcomes[1:] == [("n8n.event", "skipped: consent withdrawn")]
    with runtime.sessions() as session:
        assert session.scalars(sa.select(Consent.withdrawn_at)).one() is not None
    assert client.delete("/api/v1/contacts/unknown@example.com/consent", headers=admin_headers()).status_code == 404
    # and from the command line
    for name, value in {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "test-secret-key",
                        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN, "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"}.items():
        monkeypatch.setenv(name, value)
    assert CliRunner().invoke(main, ["consent", "withdraw", "--email", "new.person@example.com"]).exit_code == 0
    assert CliRunner().invoke(main, ["consent", "withdraw", "--email", "ghost@example.com"]).exit_code == 1


def test_cli_link(runtime, monkeypatch, client):
    for name, value in {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "test-secret-key",
                        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN, "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["link", "--email", "cli@example.com", "--type", "intern"])
    assert result.exit_code == 0, result.output
    url = result.output.splitlines()[0]
    assert client.get(urlparse(url).path).status_code == 200
    bad = CliRunner().invoke(main, ["link", "--email", "cli@example.com", "--type", "pilot"])
    assert bad.exit_code == 1 and "user_type must be one of" in bad.output
    sent = CliRunner().invoke(main, ["link", "--email", "cli@example.com", "--type", "intern", "--send"])
    assert sent.exit_code == 0 and "queued" in sent.output and "/verify/" not in sent.output
    with runtime.sessions() as session:
        job = session.scalars(sa.select(Job).where(Job.kind == "n8n.event")).one()
    assert '"type":"kyc.link_requested"' in job.payload and "cli@example.com" not in job.payload


def test_consent_text_and_stats(client, runtime, config):
    text = client.get("/api/v1/consent-text", headers=admin_headers()).get_json()
    assert text["version"] == config.consent.version and text["sha256"] == config.consent.sha256
    assert set(text["boxes"]) == set(CONSENT)
    reference = start(client).get_json()["reference_id"]
    webhook(client, config, "inq_s1", "needs_review", minutes_ago=60 * 30, reference_id=reference)
    webhook(client, config, "inq_s2", "approved", reference_id=reference, user_type="customer")
    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    assert stats["counts"] == {"needs_review": 1, "approved": 1}
    webhook(client, config, "inq_s3", "pending", reference_id=None, user_type="vendor")  # a webhook-only person
    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    # the funnel counts people, each step a subset of the one before: one onboarded person with two
    # inquiries; one known only from a webhook counts beside it (issue 17: it was "started" unconsented)
    funnel = {k: stats["funnel"][k] for k in ("consented", "started", "completed", "approved", "without_consent")}
    assert funnel == {"consented": 1, "started": 1, "completed": 1, "approved": 1, "without_consent": 1}
    [waiting] = stats["review_queue"]
    assert waiting["inquiry_id"] == "inq_s1" and waiting["overdue"] is True and waiting["waiting_hours"] >= 29.9


@pytest.fixture
def persona_client_app(runtime):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from doubles.persona import FakePersona
    from bridge.web import create_app

    with FakePersona() as persona:
        runtime.settings = replace(runtime.settings, persona_api_key=persona.api_key,
                                   persona_api_base=persona.base_url, persona_environment_id="env_test123")
        yield persona, create_app(runtime=runtime).test_client()


def test_with_an_api_key_the_inquiry_is_created_up_front_and_later_resumed(persona_client_app, runtime, config):
    persona, client = persona_client_app
    body = start(client).get_json()
    assert body["inquiry_id"].startswith("inq_") and body["session_token"]
    created = persona.inquiry(body["inquiry_id"])
    assert created.reference_id == body["reference_id"] and created.template_id == config.user_types["investor"].template_id
    assert created.redirect_uri == "http://127.0.0.1:8000/verify/done"
    _, query = hosted_query(body["hosted_url"])
    assert query["inquiry-id"] == body["inquiry_id"] and query["session-token"] == body["session_token"]
    assert query["environment-id"] == "env_test123"
    # known before its first webhook, linked to the person
    kyc = client.get("/api/v1/contacts/new.person@example.com/kyc?user_type=investor", headers=admin_headers())
    assert kyc.get_json()["status"] == "created"

    persona.clear_requests()
    again = start(client).get_json()
    assert again["resumed"] is True and again["inquiry_id"] == body["inquiry_id"] and again["session_token"]
    assert [(r.method, r.route) for r in persona.requests] == [("POST", f"/inquiries/{body['inquiry_id']}/resume")]
    assert again["attempts_used"] == 1


def test_persona_outage_during_a_session_is_a_clear_error(persona_client_app):
    persona, client = persona_client_app
    persona.reject_auth(True)
    response = start(client)
    assert response.status_code == 502 and "PERSONA_API_KEY" in response.get_json()["error"]


def test_redirect_uri_only_to_allowed_origins(client, runtime, config):
    from dataclasses import replace

    refused = start(client, session_body(redirect_uri="https://evil.example/phish"))
    assert refused.status_code == 422 and refused.get_json()["field"] == "redirect_uri"
    runtime.config = replace(config, allowed_redirect_origins=config.allowed_redirect_origins | {"https://shop.example"})
    body = start(client, session_body(redirect_uri="https://shop.example/kyc/return?x=1")).get_json()
    _, query = hosted_query(body["hosted_url"])
    assert query["redirect-uri"] == "https://shop.example/kyc/return?x=1"


def test_server_to_server_link_session_records_the_visitors_ip(client, runtime, config):
    url = client.post("/api/v1/links", json={"email": "via.wp@example.com", "user_type": "customer"},
                      headers=admin_headers()).get_json()["url"]
    response = client.post("/api/v1/sessions", headers=admin_headers(), json={
        "link_token": url.rsplit("/", 1)[1], "consent": CONSENT, "ip": "198.51.100.77", "user_agent": "Visitor UA",
        "email": "someone.else@example.com"})  # the link decides who it is for
    assert response.status_code == 201
    from bridge.consent.onboarding import hash_ip

    with runtime.sessions() as session:
        consent = session.scalars(sa.select(Consent)).one()
        contact = session.get(Contact, consent.contact_id)
    assert contact.email == "via.wp@example.com" and consent.source == "link"
    assert consent.ip_hash == hash_ip(runtime.settings.secret_key, "198.51.100.77") and consent.user_agent == "Visitor UA"


def test_a_withdrawal_ends_verified_standing_until_the_person_consents_and_verifies_again(client, runtime, config):
    """An approved person who withdrew consent no longer passes a gate (the single and the batch
    lookup, and the FluentCRM tags, follow bridge/kyc/standing.py); consenting again does not bring
    the old approval back, a new approval does."""
    email = "new.person@example.com"

    def lookup():
        one = client.get(f"/api/v1/contacts/{email}/kyc", headers=admin_headers()).get_json()
        batch = client.get(f"/api/v1/contacts/kyc?email={email}", headers=admin_headers()).get_json()
        return one, batch

    reference = start(client, user_type="customer").get_json()["reference_id"]
    webhook(client, config, "inq_before", "approved", minutes_ago=30, reference_id=reference, user_type="customer")
    assert lookup()[0]["status"] == "approved"
    assert client.delete(f"/api/v1/contacts/{email}/consent", headers=admin_headers()).status_code == 200
    one, batch = lookup()
    assert (one["status"], one["consent_withdrawn"], one["user_type"], one["level"]) == ("not_started", True, None, None)
    assert str(batch).count("'status': 'not_started'") == 1 and "approved" not in str(batch)

    # Consenting again (a new session) is not verifying again: the old approval stays out.
    again = start(client, user_type="customer").get_json()
    one, batch = lookup()
    assert (one["status"], one["consent_withdrawn"]) == ("not_started", False) and "approved" not in str(batch)
    # and a sync of the old inquiry (e.g. an admin's re-sync) takes the KYC tags away
    assert client.post("/api/v1/inquiries/inq_before/resync", headers=admin_headers()).status_code in (200, 202)
    details = [o.detail for o in Worker(runtime).drain() if o.kind == "crm.sync"]
    assert details and all(d.startswith("dry run: would attach -; detach ") for d in details), details
    # a late decision of the old inquiry emails the person nothing: it no longer speaks for them
    webhook(client, config, "inq_before", "declined", minutes_ago=5, reference_id=reference, user_type="customer")
    emails = [o.detail for o in Worker(runtime).drain() if o.kind == "n8n.event"]
    assert emails and all("from before the person's new consent" in d for d in emails), emails

    webhook(client, config, "inq_after", "approved", reference_id=again["reference_id"], user_type="customer")
    one, batch = lookup()
    assert (one["status"], one["user_type"], one["consent_withdrawn"]) == ("approved", "customer", False)
    assert "'status': 'approved'" in str(batch)
