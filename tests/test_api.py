"""Admin reads: GET /api/v1/inquiries and /api/v1/inquiries/<id> (bearer token)."""

from datetime import datetime, timedelta, timezone

import pytest

from bridge.persona import samples
from bridge.outbox.worker import Worker
from conftest import admin_headers, new_id, post_event

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def seed(client, config, inquiry_id, status, user_type, email, minutes=0):
    template = config.user_types[user_type].template_id if user_type else "itmpl_unconfigured000000001"
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=T0 + timedelta(minutes=minutes), template_id=template, email=email)
    assert post_event(client, body).status_code == 200
    return body["data"]["id"]


@pytest.fixture
def seeded(client, config):
    seed(client, config, "inq_a", "approved", "investor", "a@example.com", 1)
    seed(client, config, "inq_b", "needs_review", "cooperative_member", "b@example.com", 2)
    seed(client, config, "inq_c", "approved", "customer", "c@example.com", 3)
    seed(client, config, "inq_d", "pending", None, None, 4)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}])
def test_wrong_or_missing_token_is_401(client, headers):
    for path in ("/api/v1/inquiries", "/api/v1/inquiries/inq_a"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_list_answers_stored_state(client, seeded):
    body = client.get("/api/v1/inquiries", headers=admin_headers()).get_json()
    assert body["total"] == 4 and body["page"] == 1 and body["pages"] == 1
    by_id = {item["inquiry_id"]: item for item in body["items"]}
    assert by_id["inq_b"]["status"] == "needs_review"
    assert by_id["inq_b"]["user_type"] == "cooperative_member" and by_id["inq_b"]["level"] == "enhanced"
    assert by_id["inq_a"]["email"] == "a@example.com"
    assert by_id["inq_a"]["decided_at"] == "2025-06-01T12:01:00Z"
    assert by_id["inq_d"]["user_type"] == "unknown" and by_id["inq_d"]["email"] is None
    assert {item["crm_sync"] for item in body["items"]} == {"pending"}


@pytest.mark.parametrize("query, expected", [
    ("status=approved", {"inq_a", "inq_c"}),
    ("status=needs_review", {"inq_b"}),
    ("status=needs-review", {"inq_b"}),
    ("user_type=customer", {"inq_c"}),
    ("user_type=unknown", {"inq_d"}),
    ("email=B@Example.com", {"inq_b"}),
    ("status=approved&user_type=investor", {"inq_a"}),
])
def test_filters(client, seeded, query, expected):
    body = client.get(f"/api/v1/inquiries?{query}", headers=admin_headers()).get_json()
    assert {item["inquiry_id"] for item in body["items"]} == expected


def test_pagination(client, seeded):
    pages = [client.get(f"/api/v1/inquiries?per_page=3&page={n}", headers=admin_headers()).get_json() for n in (1, 2)]
    assert [len(p["items"]) for p in pages] == [3, 1]
    assert pages[0]["pages"] == 2 and pages[0]["total"] == 4
    ids = [i["inquiry_id"] for p in pages for i in p["items"]]
    assert sorted(ids) == ["inq_a", "inq_b", "inq_c", "inq_d"]


@pytest.mark.parametrize("query, message", [
    ("status=done", "unknown status"), ("user_type=astronaut", "unknown user_type"),
    ("per_page=0", "per_page"), ("per_page=101", "at most 100"), ("page=x", "page"),
    ("email=nope", "not an email"),
])
def test_bad_queries_are_400(client, query, message):
    response = client.get(f"/api/v1/inquiries?{query}", headers=admin_headers())
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_single_inquiry_and_crm_sync_progress(client, runtime, seeded):
    item = client.get("/api/v1/inquiries/inq_a", headers=admin_headers()).get_json()
    assert item["status"] == "approved" and item["crm_sync"] == "pending"
    Worker(runtime).drain()  # FluentCRM not configured: a dry run completes the job
    assert client.get("/api/v1/inquiries/inq_a", headers=admin_headers()).get_json()["crm_sync"] == "done"
    assert client.get("/api/v1/inquiries/inq_d", headers=admin_headers()).get_json()["crm_sync"] == "skipped"
    assert client.get("/api/v1/inquiries/inq_zzz", headers=admin_headers()).status_code == 404
