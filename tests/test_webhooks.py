"""POST /webhooks/persona against a real store (SQLite, MariaDB, PostgreSQL)."""

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bridge.persona import samples
from bridge.store.models import AuditEntry, Contact, Event, Inquiry, Job
from conftest import SHARED, WEBHOOK_SECRET, make_settings, new_id, post_event, signed_headers

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def counts(runtime):
    with runtime.sessions() as session:
        return {model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (Event, Inquiry, Contact, Job, AuditEntry)}


def inquiry_row(runtime, inquiry_id):
    with runtime.sessions() as session:
        return session.scalars(sa.select(Inquiry).where(Inquiry.inquiry_id == inquiry_id)).one_or_none()


def event(config, status, at, inquiry_id="inq_test1", event_id=None, user_type="investor", **extra):
    return samples.inquiry_event(event_id=event_id or new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=at, template_id=config.user_types[user_type].template_id
                                 if user_type else "itmpl_notConfigured0000001", **extra)


def test_stores_event_state_job_and_audit_in_one_go(client, runtime, config):
    body = event(config, "approved", T0, email="Ada@Example.COM ", first_name="Ada")
    response = post_event(client, body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "stored", "event_id": body["data"]["id"]}
    row = inquiry_row(runtime, "inq_test1")
    assert (row.status, row.user_type, row.level) == ("approved", "investor", "enhanced")
    assert row.decided_at == T0 and row.decided_by == body["data"]["id"]
    with runtime.sessions() as session:
        contact = session.get(Contact, row.contact_id)
        assert contact.email == "ada@example.com"  # normalised
        jobs = session.scalars(sa.select(Job)).all()
        assert [(j.kind, j.inquiry_id, j.state) for j in jobs] == [("crm.sync", "inq_test1", "queued"),
                                                                   ("n8n.event", "inq_test1", "queued")]
        audit = session.scalars(sa.select(AuditEntry)).all()
        assert [(a.action, a.subject) for a in audit] == [("inquiry.status", "inq_test1")]
        # case-sensitive on purpose: event ids are random lowercase hex and may hold "ada"
        assert "ada@example.com" not in audit[0].detail.lower() and "Ada" not in audit[0].detail


def test_duplicate_is_200_and_a_no_op(client, runtime, config):
    body = event(config, "approved", T0, email="a@example.com")
    assert post_event(client, body).status_code == 200
    before = counts(runtime)
    again = post_event(client, body)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert counts(runtime) == before


def test_webhooks_carry_no_rate_limit_headers(client, runtime, config):
    """Persona retries what it cannot deliver; a limit would only delay state changes."""
    from dataclasses import replace

    runtime.config = replace(runtime.config, rate_limit_per_ip="2 per minute")
    answers = [post_event(client, event(config, "approved", T0 + timedelta(seconds=n), event_id=f"evt_rl{n}"))
               for n in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert not [h for h in answers[-1].headers.keys() if h.lower().startswith(("x-ratelimit", "retry-after"))]


def test_older_event_arriving_later_never_overwrites_newer_state(client, runtime, config):
    newer = event(config, "declined", T0 + timedelta(minutes=5))
    older = event(config, "completed", T0 + timedelta(minutes=4))
    post_event(client, newer)
    before = counts(runtime)
    assert post_event(client, older).get_json()["status"] == "stored"
    row = inquiry_row(runtime, "inq_test1")
    assert row.status == "declined" and row.decided_by == newer["data"]["id"]
    after = counts(runtime)
    assert after["kyc_events"] == before["kyc_events"] + 1  # stored...
    assert after["kyc_jobs"] == before["kyc_jobs"] and after["kyc_audit_log"] == before["kyc_audit_log"]  # ...no effect


def test_status_with_dash_is_accepted(client, runtime, config):
    body = event(config, "needs_review", T0)
    body["data"]["attributes"]["payload"]["data"]["attributes"]["status"] = "needs-review"
    post_event(client, body)
    assert inquiry_row(runtime, "inq_test1").status == "needs_review"


def test_redaction_sets_redacted_at_and_keeps_status(client, runtime, config):
    post_event(client, event(config, "approved", T0, email="r@example.com"))
    redaction = event(config, "approved", T0 + timedelta(days=30), name="inquiry.redacted")
    redaction["data"]["attributes"]["payload"]["data"]["attributes"]["redacted-at"] = samples.iso(T0 + timedelta(days=30))
    assert post_event(client, redaction).status_code == 200
    row = inquiry_row(runtime, "inq_test1")
    assert row.status == "approved" and row.redacted_at == T0 + timedelta(days=30)
    assert row.decided_at == T0  # the redaction decided nothing


def test_unconfigured_template_is_tracked_as_unknown(client, runtime, config):
    post_event(client, event(config, "pending", T0, user_type=None))
    row = inquiry_row(runtime, "inq_test1")
    assert (row.user_type, row.level, row.status) == ("unknown", None, "pending")


def test_unknown_event_names_are_stored_and_acknowledged(client, runtime):
    body = {"data": {"type": "event", "id": "evt_brandnew1", "attributes": {
        "name": "transaction.created", "created-at": samples.iso(T0),
        "payload": {"data": {"type": "transaction", "id": "txn_1", "attributes": {}}}}}}
    response = post_event(client, body)
    assert response.status_code == 200 and response.get_json()["status"] == "stored"
    c = counts(runtime)
    assert c["kyc_events"] == 1 and c["kyc_inquiries"] == 0 and c["kyc_jobs"] == 0


def test_every_spec_example_goes_through_the_endpoint(client, runtime):
    # The two folders reuse event ids (made distinct here); within a folder some examples share one
    # id (the inquiry-session.* three, for instance): those repeats must be acknowledged as duplicates.
    outcomes, seen, expected_duplicates = {}, set(), 0
    for folder in ("payloads-openapi-2023-01-05", "payloads-openapi-2025-12-08"):
        for path in sorted((SHARED / "persona" / folder).glob("*.json")):
            raw = path.read_text().replace("evt_", f"evt_{folder[-4:]}")
            event_id = json.loads(raw)["data"]["id"]
            expected_duplicates += event_id in seen
            seen.add(event_id)
            response = client.post("/webhooks/persona", data=raw.encode(), headers=signed_headers(raw.encode()))
            assert response.status_code == 200, (path.name, response.get_json())
            outcomes[(folder, path.stem)] = response.get_json()["status"]
    assert expected_duplicates > 0
    assert list(outcomes.values()).count("duplicate") == expected_duplicates
    row = inquiry_row(runtime, "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
    # newest status-bearing event of the examples: inquiry.updated-tags at 2024-03-16T09:15 → approved;
    # inquiry.expired (2024-03-16T18:30, status expired) is newer still.
    assert row.status == "expired"
    assert row.redacted_at is not None
    assert row.user_type == "unknown"  # the examples' template is not in our config


def test_missing_and_bad_signature_are_401_and_change_nothing(client, runtime, config):
    raw = samples.encode(event(config, "approved", T0))
    assert client.post("/webhooks/persona", data=raw).status_code == 401
    bad = client.post("/webhooks/persona", data=raw, headers=signed_headers(raw, ["wbhsec_wrong"]))
    assert bad.status_code == 401 and "does not match" in bad.get_json()["error"]
    tampered = client.post("/webhooks/persona", data=raw + b" ", headers=signed_headers(raw))
    assert tampered.status_code == 401
    assert sum(counts(runtime).values()) == 0


def test_rotation_header_and_several_configured_secrets(app, client, runtime, config):
    runtime.settings = make_settings(runtime.settings.database_url,
                                     PERSONA_WEBHOOK_SECRETS=f"wbhsec_next_one,{WEBHOOK_SECRET}")
    raw = samples.encode(event(config, "approved", T0))
    response = client.post("/webhooks/persona", data=raw, headers=signed_headers(raw, ["wbhsec_unknown", WEBHOOK_SECRET]))
    assert response.status_code == 200
    raw2 = samples.encode(event(config, "approved", T0, inquiry_id="inq_2"))
    assert client.post("/webhooks/persona", data=raw2, headers=signed_headers(raw2, ["wbhsec_next_one"])).status_code == 200


def test_stale_signature_rejected_only_when_a_tolerance_is_configured(client, runtime, config):
    raw = samples.encode(event(config, "approved", T0))
    old = signed_headers(raw, timestamp=int(datetime.now().timestamp()) - 51 * 3600)
    assert client.post("/webhooks/persona", data=raw, headers=old).status_code == 200
    from dataclasses import replace

    runtime.config = replace(runtime.config, signature_tolerance_seconds=300)
    raw2 = samples.encode(event(config, "approved", T0, inquiry_id="inq_2"))
    old2 = signed_headers(raw2, timestamp=int(datetime.now().timestamp()) - 3600)
    response = client.post("/webhooks/persona", data=raw2, headers=old2)
    assert response.status_code == 401 and "tolerance" in response.get_json()["error"]
    assert inquiry_row(runtime, "inq_2") is None


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "not valid JSON"),
    (b'{"data": {"type": "inquiry"}}', "data.type must be 'event'"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "inquiry.approved"}}}', "created-at"),
])
def test_malformed_signed_bodies_are_400_with_a_clear_message(client, runtime, raw, message):
    response = client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert sum(counts(runtime).values()) == 0


def test_body_over_the_limit_is_413(runtime, config):
    from dataclasses import replace

    from bridge.web import create_app

    runtime.config = replace(config, max_body_bytes=2048)
    client = create_app(runtime=runtime).test_client()
    body = event(config, "approved", T0)
    body["data"]["attributes"]["payload"]["included"] = [{"type": "x", "id": "x" * 4096}]
    raw = samples.encode(body)
    response = client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))
    assert response.status_code == 413
    assert sum(counts(runtime).values()) == 0
    small = samples.encode(event(config, "approved", T0))
    assert client.post("/webhooks/persona", data=small, headers=signed_headers(small)).status_code == 200


def test_default_limit_is_one_mebibyte(client, runtime, config):
    raw = b" " * (1024 * 1024 + 1)
    assert client.post("/webhooks/persona", data=raw, headers=signed_headers(raw)).status_code == 413


def test_store_unreachable_is_503(config, tmp_path):
    from bridge.runtime import Runtime
    from bridge.web import create_app

    settings = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    client = create_app(runtime=Runtime.build(settings, config)).test_client()
    raw = samples.encode(event(config, "approved", T0))
    response = client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))
    assert response.status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_stored_payload_is_the_raw_body(client, runtime, config):
    raw = samples.encode(event(config, "approved", T0, event_id="evt_rawbody1"))
    client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))
    with runtime.sessions() as session:
        stored = session.scalars(sa.select(Event).where(Event.event_id == "evt_rawbody1")).one()
        assert json.loads(stored.payload) == json.loads(raw) and stored.applied


def test_email_case_variants_map_to_one_contact(client, runtime, config):
    post_event(client, event(config, "approved", T0, inquiry_id="inq_a", email="Same@Example.com"))
    post_event(client, event(config, "approved", T0, inquiry_id="inq_b", email="same@example.COM"))
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1


def test_webhooks_are_not_rate_limited(client, runtime, config):
    # Persona delivers from a few addresses in bursts; only the onboarding routes carry limits.
    from dataclasses import replace

    runtime.config = replace(runtime.config, rate_limit_per_ip="2 per minute")
    statuses = [post_event(client, event(config, "pending", T0 + timedelta(seconds=n), inquiry_id=f"inq_rl{n}"))
                .status_code for n in range(5)]
    assert statuses == [200] * 5
    assert client.get("/verify/done").status_code == 200
    assert client.get("/verify/done").status_code == 200
    assert client.get("/verify/done").status_code == 429  # the limiter itself still works


def test_one_waiting_crm_sync_per_inquiry_until_a_worker_takes_it(client, runtime, config):
    from bridge.store import queue

    def sync_jobs():
        with runtime.sessions() as session:
            return session.scalars(sa.select(Job.state).where(Job.kind == "crm.sync").order_by(Job.id)).all()

    for n, status in enumerate(("created", "pending", "completed")):
        assert post_event(client, event(config, status, T0 + timedelta(minutes=n))).status_code == 200
    assert sync_jobs() == ["queued"]  # each later change found it waiting: it will read the newest state
    with runtime.sessions.begin() as session:
        assert len(queue.claim(session, now=datetime.now(timezone.utc), lease_seconds=60, limit=10)) == 1
    assert post_event(client, event(config, "approved", T0 + timedelta(minutes=5))).status_code == 200
    assert sync_jobs() == ["running", "queued"]  # the running one may have read the old state
    with runtime.sessions() as session:
        n8n = session.scalars(sa.select(Job.payload).where(Job.kind == "n8n.event")).all()
    assert [json.loads(p)["status"] for p in n8n] == ["approved"]
