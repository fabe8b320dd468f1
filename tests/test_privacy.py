"""Export and erasure of a person's data; KYC decisions are retained without personal data."""

from datetime import datetime, timezone

import sqlalchemy as sa
from click.testing import CliRunner

from bridge import audit
from bridge.app.cli import main
from bridge.persona import samples
from bridge.store.models import Consent, Contact, Event, Inquiry, Job
from conftest import ADMIN_TOKEN, admin_headers, new_id, post_event

CONSENT = {"share_with_persona": True, "persona_retention": True, "gdpr_processing": True}


def onboard_and_approve(client, config):
    reference = client.post("/api/v1/sessions", headers=admin_headers(), json={
        "email": "Erin@Example.com", "user_type": "vendor", "first_name": "Erin", "wp_user_id": 42,
        "ip": "192.0.2.4", "user_agent": "UA", "consent": CONSENT}).get_json()["reference_id"]
    post_event(client, samples.inquiry_event(
        event_id=new_id("evt"), inquiry_id="inq_priv", status="approved", created_at=datetime.now(timezone.utc),
        reference_id=reference, email="erin@example.com", first_name="Erin",
        template_id=config.user_types["vendor"].template_id))
    return reference


def test_export_lists_what_the_bridge_holds(client, config):
    reference = onboard_and_approve(client, config)
    data = client.get("/api/v1/contacts/erin@example.com/export", headers=admin_headers()).get_json()
    assert data["email"] == "erin@example.com" and data["first_name"] == "Erin" and data["wp_user_id"] == 42
    assert data["reference_id"] == reference
    assert [c["user_type"] for c in data["consents"]] == ["vendor"]
    assert [(i["inquiry_id"], i["status"]) for i in data["inquiries"]] == [("inq_priv", "approved")]
    assert client.get("/api/v1/contacts/nobody@example.com/export", headers=admin_headers()).status_code == 404
    assert client.get("/api/v1/contacts/erin@example.com/export").status_code == 401


def test_erasure_removes_personal_data_keeps_decisions_and_the_chain(client, runtime, config):
    onboard_and_approve(client, config)
    response = client.post("/api/v1/contacts/erin@example.com/erase", headers=admin_headers())
    assert response.status_code == 200
    body = response.get_json()
    assert body["erased"] is True and body["persona_redaction"] == "not configured"
    assert any("KYC decisions" in item for item in body["retained"])
    with runtime.sessions() as session:
        contact = session.scalars(sa.select(Contact)).one()
        assert (contact.email, contact.first_name, contact.wp_user_id) == (None, None, None)
        consent = session.scalars(sa.select(Consent)).one()
        assert consent.ip_hash is None and consent.user_agent is None
        assert session.scalars(sa.select(Event.payload)).all() == [None]
        inquiry = session.scalars(sa.select(Inquiry)).one()
        assert inquiry.status == "approved" and inquiry.contact_id == contact.id
        assert audit.verify(session).ok
    assert client.get("/api/v1/contacts/erin@example.com/export", headers=admin_headers()).status_code == 404
    assert client.post("/api/v1/contacts/erin@example.com/erase", headers=admin_headers()).status_code == 404


def test_erasure_asks_persona_to_redact_when_an_api_key_is_set(client, runtime, config, monkeypatch):
    onboard_and_approve(client, config)
    from dataclasses import replace

    runtime.settings = replace(runtime.settings, persona_api_key="persona_sandbox_test")
    body = client.post("/api/v1/contacts/erin@example.com/erase", headers=admin_headers()).get_json()
    assert body["persona_redaction"] == "requested"
    with runtime.sessions() as session:
        jobs = session.scalars(sa.select(Job).where(Job.kind == "persona.redact")).all()
    assert [(j.inquiry_id, j.state) for j in jobs] == [("inq_priv", "queued")]


def test_cli_erase(client, runtime, config, monkeypatch):
    onboard_and_approve(client, config)
    for name, value in {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "k",
                        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN, "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["erase", "--email", "ERIN@example.com", "--yes"])
    assert result.exit_code == 0 and "1 KYC decision(s) kept" in result.output
    assert CliRunner().invoke(main, ["erase", "--email", "erin@example.com", "--yes"]).exit_code == 1
