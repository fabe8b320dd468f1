"""The admin's view of one person and its one-click fixes (issue 17), the inquiry list's paging,
sorting and filters, the funnel on people, and the two token scopes."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bridge.outbox.worker import Worker
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.settings import SettingsError
from bridge.store.models import AuditEntry, Job
from bridge.web import create_app
from conftest import ADMIN_TOKEN, admin_headers, make_settings, new_id, post_event

READ_TOKEN = "test-read-token"
CONSENT = {"share_with_persona": True, "persona_retention": True, "gdpr_processing": True, "text_version": "2026-11-01"}


def now():
    return datetime.now(timezone.utc)


def start(client, email, user_type="investor", first_name="Nia"):
    response = client.post("/api/v1/sessions", headers=admin_headers(), json={
        "email": email, "user_type": user_type, "first_name": first_name, "consent": CONSENT})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference_id"]


def webhook(client, config, inquiry_id, status, *, hours_ago=0.0, reference_id=None, email=None,
            first_name=None, user_type="investor"):
    event = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                  created_at=now() - timedelta(hours=hours_ago), reference_id=reference_id,
                                  email=email, first_name=first_name,
                                  template_id=config.user_types[user_type].template_id)
    assert post_event(client, event).status_code == 200


def kill_jobs(runtime, *, inquiry_id=None, kind=None, error="FluentCRM answered HTTP 500"):
    """Make queued jobs dead, as the worker leaves them after the last failed attempt."""
    with runtime.sessions.begin() as session:
        query = sa.update(Job).values(state="dead", attempts=Job.max_attempts, last_error=error)
        if inquiry_id:
            query = query.where(Job.inquiry_id == inquiry_id)
        if kind:
            query = query.where(Job.kind == kind)
        session.execute(query)


def jobs(runtime, **where):
    with runtime.sessions() as session:
        query = sa.select(Job).order_by(Job.id)
        for key, value in where.items():
            query = query.where(getattr(Job, key) == value)
        return session.scalars(query).all()


@pytest.fixture
def people(client, config):
    """Ana: consented, two inquiries (a decline then an approval). Bo: only a webhook (no consent)."""
    reference = start(client, "ana@example.com", first_name="Ana")
    webhook(client, config, "inq_ana1", "declined", hours_ago=5, reference_id=reference)
    webhook(client, config, "inq_ana2", "pending", hours_ago=2, reference_id=reference, user_type="customer")
    webhook(client, config, "inq_ana2", "approved", hours_ago=1, reference_id=reference, user_type="customer")
    webhook(client, config, "inq_bo", "needs_review", hours_ago=30, email="bo@example.com", first_name="Bo",
            user_type="cooperative_member")


# --- GET /api/v1/contacts/<email> ------------------------------------------------------------------------


def test_contact_detail_has_history_consents_and_jobs_with_errors(client, runtime, people):
    kill_jobs(runtime, inquiry_id="inq_ana1", kind="crm.sync")
    body = client.get("/api/v1/contacts/Ana@Example.com", headers=admin_headers()).get_json()
    assert body["email"] == "ana@example.com" and body["first_name"] == "Ana"
    assert body["kyc"]["status"] == "approved" and body["kyc"]["user_type"] == "customer"
    assert [c["user_type"] for c in body["consents"]] == ["investor"] and body["consents"][0]["text_version"] == "2026-11-01"
    by_id = {i["inquiry_id"]: i for i in body["inquiries"]}
    assert [h["status"] for h in by_id["inq_ana2"]["history"]] == ["pending", "approved"]
    assert all(h["applied"] for h in by_id["inq_ana2"]["history"])
    assert by_id["inq_ana1"]["crm_sync"] == "dead" and by_id["inq_ana1"]["crm_sync_error"] == "FluentCRM answered HTTP 500"
    dead = [j for j in body["jobs"] if j["state"] == "dead"]
    assert [(j["kind"], j["inquiry_id"], j["last_error"]) for j in dead] == [
        ("crm.sync", "inq_ana1", "FluentCRM answered HTTP 500")]
    assert body["dead_jobs"] == 1
    n8n = {j["event_type"] for j in body["jobs"] if j["kind"] == "n8n.event"}
    assert n8n == {"kyc.declined", "kyc.approved"}
    assert all(j["inquiry_id"] in ("inq_ana1", "inq_ana2") for j in body["jobs"])  # none of Bo's


def test_contact_detail_lists_jobs_without_an_inquiry_id(client, runtime, people):
    client.post("/api/v1/contacts/ana@example.com/resend-link", headers=admin_headers(), json={})
    body = client.get("/api/v1/contacts/ana@example.com", headers=admin_headers()).get_json()
    assert [j["event_type"] for j in body["jobs"] if j["inquiry_id"] is None] == ["kyc.link_requested"]
    other = client.get("/api/v1/contacts/bo@example.com", headers=admin_headers()).get_json()
    assert all(j["event_type"] != "kyc.link_requested" for j in other["jobs"])


def test_contact_detail_unknown_or_bad_email(client, people):
    assert client.get("/api/v1/contacts/nobody@example.com", headers=admin_headers()).status_code == 404
    assert client.get("/api/v1/contacts/not-an-email", headers=admin_headers()).status_code == 400


# --- GET /api/v1/contacts/kyc?email=…&email=… -----------------------------------------------------------


def test_batch_lookup_answers_each_email_in_order_once(client, people):
    response = client.get("/api/v1/contacts/kyc?email=bo@example.com&email=ANA@example.com&email=new@example.com"
                          "&email=bo@example.com", headers=admin_headers())
    items = response.get_json()["items"]
    assert [(i["email"], i["status"]) for i in items] == [
        ("bo@example.com", "needs_review"), ("ana@example.com", "approved"), ("new@example.com", "not_started")]
    # the same answer as the single lookup, for each
    single = client.get("/api/v1/contacts/ana@example.com/kyc", headers=admin_headers()).get_json()
    assert items[1] == single


def test_batch_lookup_by_user_type(client, people):
    items = client.get("/api/v1/contacts/kyc?email=ana@example.com&user_type=investor",
                       headers=admin_headers()).get_json()["items"]
    assert items[0]["status"] == "declined" and items[0]["user_type"] == "investor"


@pytest.mark.parametrize("query, message", [
    ("", "at least one email"), ("email=nope", "email parameter 1"),
    ("email=a@example.com&email=x", "email parameter 2"), ("email=a@example.com&user_type=astronaut", "user_type"),
    ("&".join(f"email=p{n}@example.com" for n in range(101)), "at most 100"),
])
def test_batch_lookup_bad_queries_are_400(client, query, message):
    response = client.get(f"/api/v1/contacts/kyc?{query}", headers=admin_headers())
    assert response.status_code == 400 and message in response.get_json()["error"]


# --- POST /api/v1/inquiries/<id>/resync --------------------------------------------------------------------


def test_resync_queues_one_crm_sync_and_says_when_one_already_waits(client, runtime, people):
    Worker(runtime).drain()
    before = len(jobs(runtime, kind="crm.sync", inquiry_id="inq_ana2"))
    first = client.post("/api/v1/inquiries/inq_ana2/resync", headers=admin_headers())
    assert first.status_code == 202 and first.get_json() == {"inquiry_id": "inq_ana2", "queued": True}
    second = client.post("/api/v1/inquiries/inq_ana2/resync", headers=admin_headers())
    assert second.status_code == 202 and second.get_json()["queued"] is False
    synced = jobs(runtime, kind="crm.sync", inquiry_id="inq_ana2")
    assert len(synced) == before + 1 and synced[-1].state == "queued"
    Worker(runtime).drain()
    assert jobs(runtime, kind="crm.sync", inquiry_id="inq_ana2")[-1].state == "done"
    with runtime.sessions() as session:
        actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.subject == "inq_ana2")).all()
    assert actions.count("inquiry.resync") == 2


def test_contact_detail_finds_the_persons_tag_job_by_its_contact_key(client, runtime, config):
    """The manual-review tag job (attempts used up) carries no inquiry id: it was found by LIKE over
    its payload, now by its contact key; another person's tag job is not listed."""
    for email in ("cy@example.com", "di@example.com"):
        for attempt in range(3):
            reference = start(client, email)
            webhook(client, config, new_id("inq"), "failed", reference_id=reference)
        assert client.post("/api/v1/sessions", headers=admin_headers(), json={
            "email": email, "user_type": "investor", "consent": CONSENT}).status_code == 409
    tagged = jobs(runtime, kind="crm.tag")
    assert len(tagged) == 2 and all(job.contact_key for job in tagged)
    body = client.get("/api/v1/contacts/cy@example.com", headers=admin_headers()).get_json()
    listed = [j["id"] for j in body["jobs"] if j["kind"] == "crm.tag"]
    assert listed == [tagged[0].id]
    with runtime.sessions() as session:  # without the payload's contact id, the key still finds it
        session.execute(sa.update(Job).where(Job.id == tagged[0].id).values(payload='{"tag":"manual_review"}'))
        session.commit()
    body = client.get("/api/v1/contacts/cy@example.com", headers=admin_headers()).get_json()
    assert [j["id"] for j in body["jobs"] if j["kind"] == "crm.tag"] == [tagged[0].id]


def test_every_sync_that_writes_a_persons_contact_carries_their_key(client, runtime, people):
    """One write to a person's FluentCRM contact at a time holds only if every such job has their
    key: the admin's re-sync and a withdrawal's sync had none, so either could run beside a sync
    the intake queued for the same person."""
    Worker(runtime).drain()
    assert client.post("/api/v1/inquiries/inq_ana1/resync", headers=admin_headers()).status_code == 202
    assert client.delete("/api/v1/contacts/bo@example.com/consent", headers=admin_headers()).status_code == 200
    waiting = {job.inquiry_id: job.contact_key for job in jobs(runtime, kind="crm.sync", state="queued")}
    intake_key = {job.inquiry_id: job.contact_key for job in jobs(runtime, kind="crm.sync")}
    assert waiting == {"inq_ana1": intake_key["inq_ana2"], "inq_bo": waiting["inq_bo"]}
    assert waiting["inq_ana1"].startswith("contact:") and waiting["inq_bo"].startswith("contact:")
    body = client.get("/api/v1/contacts/bo@example.com", headers=admin_headers()).get_json()
    assert sum(1 for j in body["jobs"] if j["kind"] == "crm.sync" and j["state"] == "queued") == 1


def test_resync_of_an_unknown_inquiry_is_404_and_queues_nothing(client, runtime, people):
    count = len(jobs(runtime))
    assert client.post("/api/v1/inquiries/inq_nope/resync", headers=admin_headers()).status_code == 404
    assert len(jobs(runtime)) == count


# --- POST /api/v1/jobs/retry -------------------------------------------------------------------------------


def test_retry_one_persons_dead_jobs_leaves_the_others_dead(client, runtime, people):
    kill_jobs(runtime)
    response = client.post("/api/v1/jobs/retry", headers=admin_headers(), json={"email": "Ana@example.com"})
    ana_jobs = [j for j in jobs(runtime) if j.inquiry_id in ("inq_ana1", "inq_ana2")]
    assert sorted(response.get_json()["requeued"]) == sorted(j.id for j in ana_jobs)
    assert {(j.state, j.attempts) for j in ana_jobs} == {("queued", 0)}
    assert {j.state for j in jobs(runtime, inquiry_id="inq_bo")} == {"dead"}


def test_retry_for_a_person_without_dead_jobs_requeues_nothing(client, runtime, people):
    kill_jobs(runtime, inquiry_id="inq_bo")
    response = client.post("/api/v1/jobs/retry", headers=admin_headers(), json={"email": "ana@example.com"})
    assert response.get_json() == {"requeued": [], "count": 0}
    assert {j.state for j in jobs(runtime, inquiry_id="inq_bo")} == {"dead"}  # not "all" by accident


def test_retry_all(client, runtime, people):
    kill_jobs(runtime)
    response = client.post("/api/v1/jobs/retry", headers=admin_headers(), json={"all": True})
    assert response.get_json()["count"] == len(jobs(runtime)) and {j.state for j in jobs(runtime)} == {"queued"}


@pytest.mark.parametrize("body, status", [
    (None, 400), ({}, 400), ({"all": False}, 400), ({"email": "a@example.com", "all": True}, 400),
    ({"email": "nope"}, 400), ({"email": 7}, 400), ({"email": "nobody@example.com"}, 404),
])
def test_retry_bad_requests_change_nothing(client, runtime, people, body, status):
    kill_jobs(runtime)
    response = client.post("/api/v1/jobs/retry", headers=admin_headers(), json=body)
    assert response.status_code == status
    assert {j.state for j in jobs(runtime)} == {"dead"}


# --- POST /api/v1/contacts/<email>/resend-link -------------------------------------------------------------


def test_resend_link_queues_the_link_requested_event_for_the_newest_user_type(client, runtime, people):
    response = client.post("/api/v1/contacts/ana@example.com/resend-link", headers=admin_headers())
    assert response.status_code == 202 and response.get_json() == {"queued": True, "user_type": "customer"}
    [job] = [j for j in jobs(runtime, kind="n8n.event") if "kyc.link_requested" in j.payload]
    assert "ana@example.com" not in job.payload and '"user_type":"customer"' in job.payload
    explicit = client.post("/api/v1/contacts/ana@example.com/resend-link", headers=admin_headers(),
                           json={"user_type": "investor"})
    assert explicit.get_json()["user_type"] == "investor"


def test_resend_link_is_refused_after_withdrawal_and_for_unknown_people(client, runtime, people):
    assert client.delete("/api/v1/contacts/ana@example.com/consent", headers=admin_headers()).status_code == 200
    count = len(jobs(runtime))
    assert client.post("/api/v1/contacts/ana@example.com/resend-link", headers=admin_headers()).status_code == 409
    assert client.post("/api/v1/contacts/zed@example.com/resend-link", headers=admin_headers()).status_code == 404
    bad_type = client.post("/api/v1/contacts/bo@example.com/resend-link", headers=admin_headers(),
                           json={"user_type": "astronaut"})
    assert bad_type.status_code == 422 and bad_type.get_json()["field"] == "user_type"
    assert len(jobs(runtime)) == count


# --- GET /api/v1/inquiries: paging, sorting, filters, names ------------------------------------------------


@pytest.fixture
def queue_of_cases(client, config):
    """Review cases waiting 2 h, 30 h, 50 h; an approval; a basic-level decline."""
    for name, hours in (("fresh", 2), ("late", 30), ("oldest", 50)):
        webhook(client, config, f"inq_{name}", "needs_review", hours_ago=hours, email=f"{name}@example.com",
                first_name=name.title(), user_type="cooperative_member")
    webhook(client, config, "inq_ok", "approved", hours_ago=1, email="ok@example.com", first_name="Zoe",
            user_type="investor")
    webhook(client, config, "inq_no", "declined", hours_ago=3, email="no@example.com", user_type="customer")


def listed(client, query):
    response = client.get(f"/api/v1/inquiries?{query}", headers=admin_headers())
    assert response.status_code == 200, response.get_json()
    return [i["inquiry_id"] for i in response.get_json()["items"]]


def test_overdue_first_then_the_newest(client, queue_of_cases):
    assert listed(client, "overdue_first=1&sort=decided_at") == ["inq_oldest", "inq_late", "inq_ok", "inq_fresh", "inq_no"]
    assert listed(client, "overdue_first=1&sort=decided_at&order=asc")[:2] == ["inq_oldest", "inq_late"]


def test_review_queue_is_paged_longest_waiting_first(client, queue_of_cases):
    query = "status=needs_review&sort=waiting&order=asc&per_page=2"
    assert listed(client, query + "&page=1") == ["inq_oldest", "inq_late"]
    assert listed(client, query + "&page=2") == ["inq_fresh"]
    items = client.get(f"/api/v1/inquiries?{query}", headers=admin_headers()).get_json()["items"]
    assert items[0]["overdue"] is True and items[0]["waiting_hours"] >= 49.9 and items[0]["first_name"] == "Oldest"


@pytest.mark.parametrize("query, expected", [
    ("sort=name&order=asc", ["inq_fresh", "inq_late", "inq_oldest", "inq_ok", "inq_no"]),  # no name: last
    ("sort=email&order=desc", ["inq_oldest", "inq_ok", "inq_no", "inq_late", "inq_fresh"]),
    ("sort=decided_at&order=asc", ["inq_oldest", "inq_late", "inq_no", "inq_fresh", "inq_ok"]),
    ("level=basic&sort=status&order=asc", ["inq_no"]),
    ("level=enhanced&sort=email&order=asc", ["inq_fresh", "inq_late", "inq_ok", "inq_oldest"]),
    ("search=OLD", ["inq_oldest"]),
    ("search=zo", ["inq_ok"]),
    ("search=%25", []),  # a LIKE wildcard is a plain character
    ("search=_", []),
])
def test_sorting_filters_and_search(client, queue_of_cases, query, expected):
    assert listed(client, query) == expected


@pytest.mark.parametrize("query, message", [
    ("sort=secret", "unknown sort"), ("order=up", "unknown order"), ("level=gold", "unknown level"),
    ("overdue_first=maybe", "overdue_first"), ("search=" + "x" * 101, "search"),
])
def test_bad_list_queries_are_400(client, query, message):
    response = client.get(f"/api/v1/inquiries?{query}", headers=admin_headers())
    assert response.status_code == 400 and message in response.get_json()["error"]


# --- the funnel -----------------------------------------------------------------------------------------


def test_funnel_steps_are_subsets_of_people_with_conversion_and_median(client, config, people):
    start(client, "cy@example.com")  # consented, never started
    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    funnel = stats["funnel"]
    # Bo came by webhook only: beside the funnel, not in its later steps
    assert {k: funnel[k] for k in ("consented", "started", "completed", "approved", "without_consent")} == {
        "consented": 2, "started": 1, "completed": 1, "approved": 1, "without_consent": 1}
    assert funnel["conversion"] == {"started": 50.0, "completed": 100.0, "approved": 100.0}
    assert funnel["overall"] == 50.0
    # inq_ana2: pending 2 h ago, approved 1 h ago; inq_ana1 was first seen with its decline (not counted)
    assert stats["median_hours_to_decision"] == pytest.approx(1.0, abs=0.01)
    assert stats["review_total"] == 1 and stats["review_overdue"] == 1


def test_empty_funnel_has_no_percentages(client):
    stats = client.get("/api/v1/stats", headers=admin_headers()).get_json()
    assert stats["funnel"]["conversion"] == {"started": None, "completed": None, "approved": None}
    assert stats["median_hours_to_decision"] is None


# --- token scopes ---------------------------------------------------------------------------------------


@pytest.fixture
def scoped_client(database_url, config):
    runtime = Runtime.build(make_settings(database_url, BRIDGE_READ_TOKEN=READ_TOKEN), config)
    app = create_app(runtime=runtime)
    app.testing = True
    yield app.test_client(), runtime
    runtime.engine.dispose()


def read(headers=None):
    return {"Authorization": f"Bearer {READ_TOKEN}", **(headers or {})}


READ_ROUTES = [
    ("GET", "/api/v1/contacts/ana@example.com/kyc", None, 200),
    ("GET", "/api/v1/contacts/kyc?email=ana@example.com", None, 200),
    ("GET", "/api/v1/consent-text", None, 200),
    ("POST", "/api/v1/links", {"email": "ana@example.com", "user_type": "investor"}, 201),
    ("POST", "/api/v1/sessions", {"email": "new@example.com", "user_type": "investor", "consent": CONSENT}, 201),
    # the person's own withdrawal, relayed by the site's front end
    ("DELETE", "/api/v1/contacts/ana@example.com/consent", None, 200),
]
ADMIN_ROUTES = [
    ("GET", "/api/v1/inquiries", None), ("GET", "/api/v1/inquiries/inq_x", None), ("GET", "/api/v1/stats", None),
    ("GET", "/api/v1/contacts/ana@example.com", None), ("GET", "/api/v1/contacts/ana@example.com/export", None),
    ("POST", "/api/v1/contacts/ana@example.com/erase", {}),
    ("POST", "/api/v1/inquiries/inq_x/resync", None), ("POST", "/api/v1/jobs/retry", {"all": True}),
    ("POST", "/api/v1/contacts/ana@example.com/resend-link", {}),
]


@pytest.mark.parametrize("method, path, body, status", READ_ROUTES)
def test_read_token_may_look_up_and_start(scoped_client, method, path, body, status):
    client, _ = scoped_client
    start(client, "ana@example.com")
    assert client.open(path, method=method, json=body, headers=read()).status_code == status


@pytest.mark.parametrize("method, path, body", ADMIN_ROUTES)
def test_read_token_is_refused_for_admin_routes_and_changes_nothing(scoped_client, method, path, body):
    client, runtime = scoped_client
    start(client, "ana@example.com")
    with runtime.sessions() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    response = client.open(path, method=method, json=body, headers=read())
    assert response.status_code == 403 and "read-only" in response.get_json()["error"]
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == before
    assert client.open(path, method=method, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.open(path, method=method, json=body, headers=admin_headers()).status_code not in (401, 403)


def test_without_a_read_token_configured_only_the_admin_token_works(client):
    assert client.get("/api/v1/consent-text", headers=read()).status_code == 401
    assert client.get("/api/v1/consent-text", headers=admin_headers()).status_code == 200


def test_read_token_equal_to_the_admin_token_is_refused_at_start(database_url):
    with pytest.raises(SettingsError, match="BRIDGE_READ_TOKEN must differ"):
        make_settings(database_url, BRIDGE_READ_TOKEN=ADMIN_TOKEN)


# --- POST /api/v1/links {"send": true}: a link for someone new (a shop's paid order) -----------------


def test_send_link_queues_the_event_for_a_new_person_and_a_key_makes_repeats_one_event(client, runtime):
    from bridge.outbox import notify
    from bridge.store.models import Contact

    body = {"email": "Buyer@Example.com", "user_type": "customer", "first_name": "Bea", "send": True,
            "key": "wp-order:woocommerce:1001"}
    first = client.post("/api/v1/links", headers=admin_headers(), json=body)
    assert first.status_code == 202 and first.get_json() == {"queued": True}
    again = client.post("/api/v1/links", headers=admin_headers(), json=body)  # the shop fired twice
    assert again.status_code == 202
    link_jobs = [j for j in jobs(runtime, kind="n8n.event") if "kyc.link_requested" in j.payload]
    assert len(link_jobs) == 2 and "buyer@example.com" not in link_jobs[0].payload
    with runtime.sessions() as session:
        contact = session.scalars(sa.select(Contact).where(Contact.email == "buyer@example.com")).one()
        assert contact.first_name == "Bea"
    prepared = [notify.prepare(runtime.sessions, runtime.config, __import__("json").loads(j.payload),
                               secret_key="k", now=now(), issue_links=False) for j in link_jobs]
    assert prepared[0].event["id"] == prepared[1].event["id"]  # one event id: n8n sends it once
    assert prepared[0].event["contact"]["email"] == "buyer@example.com"


@pytest.mark.parametrize("body, status, field", [
    ({"email": "x@example.com", "user_type": "astronaut", "send": True}, 422, "user_type"),
    ({"email": "nope", "user_type": "customer", "send": True}, 422, "email"),
    ({"email": "x@example.com", "user_type": "customer", "send": True, "key": "k" * 101}, 422, "key"),
])
def test_send_link_bad_input_changes_nothing(client, runtime, body, status, field):
    response = client.post("/api/v1/links", headers=admin_headers(), json=body)
    assert response.status_code == status and response.get_json()["field"] == field
    assert jobs(runtime) == []


def test_send_link_after_a_withdrawal_is_refused(client, runtime, people):
    client.delete("/api/v1/contacts/ana@example.com/consent", headers=admin_headers())
    count = len(jobs(runtime))
    response = client.post("/api/v1/links", headers=admin_headers(),
                           json={"email": "ana@example.com", "user_type": "customer", "send": True})
    assert response.status_code == 409 and len(jobs(runtime)) == count
