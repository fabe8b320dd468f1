"""Erasure also removes the person's KYC tags in FluentCRM (issue 18, item 5): through the outbox,
by the email the job carries until it has run, under the person's key, and not at all with
`[privacy] erase_crm_tags = false`. Afterwards the store holds no email anywhere."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from conftest import admin_headers
from test_privacy import onboard_and_approve

from bridge.config import PrivacyConfig
from bridge.consent import privacy
from bridge.outbox.worker import Worker
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Base, Job
from bridge.web import create_app

EMAIL = "erin@example.com"
KYC_TAGS = {"kyc-approved", "kyc-type-vendor"}


def approved_and_tagged(runtime, config, fluentcrm):  # type: ignore[no-untyped-def]
    """Erin is approved as a vendor; FluentCRM carries her KYC tags and a tag of the shop's own."""
    fluentcrm.add_contact(EMAIL, first_name="Erin", tag_slugs=["newsletter"])
    client = create_app(runtime=runtime).test_client()
    onboard_and_approve(client, config)
    Worker(runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == KYC_TAGS | {"newsletter"}
    return client


def stored_text(runtime) -> str:  # type: ignore[no-untyped-def]
    """Every value of every bridge table, as text."""
    with runtime.engine.connect() as connection:
        return "\n".join(str(row) for table in Base.metadata.sorted_tables
                         for row in connection.execute(sa.select(table)))


def erase_jobs(runtime) -> list[Job]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        jobs = session.scalars(sa.select(Job).where(Job.kind == queue.CRM_ERASE)).all()
        session.expunge_all()
        return list(jobs)


def test_erasure_takes_the_kyc_tags_off_and_the_store_keeps_no_email(crm_runtime, config, fluentcrm):  # type: ignore[no-untyped-def]
    client = approved_and_tagged(crm_runtime, config, fluentcrm)
    body = client.post(f"/api/v1/contacts/{EMAIL}/erase", headers=admin_headers()).get_json()
    assert body["crm_tags"] == "removal requested"

    [job] = erase_jobs(crm_runtime)
    assert json.loads(job.payload)["email"] == EMAIL  # the only copy left, until the job has run
    with transaction(crm_runtime.sessions) as session:
        syncs = session.scalars(sa.select(Job.contact_key).where(Job.kind == queue.CRM_SYNC)).all()
    assert job.contact_key == syncs[0] and job.contact_key.startswith("contact:")  # one write at a time for her

    Worker(crm_runtime).drain()

    assert set(fluentcrm.contact(EMAIL).tag_slugs) == {"newsletter"}  # the shop's own tag stays
    [job] = erase_jobs(crm_runtime)
    assert job.state == queue.DONE and "detached" in (job.result or "")
    assert EMAIL not in stored_text(crm_runtime) and "Erin" not in stored_text(crm_runtime)


def test_with_erase_crm_tags_off_the_tags_stay(crm_runtime, config, fluentcrm):  # type: ignore[no-untyped-def]
    crm_runtime.config = replace(config, privacy=PrivacyConfig(erase_crm_tags=False))
    client = approved_and_tagged(crm_runtime, config, fluentcrm)
    body = client.post(f"/api/v1/contacts/{EMAIL}/erase", headers=admin_headers()).get_json()
    assert body["crm_tags"] == "off"
    Worker(crm_runtime).drain()
    assert set(fluentcrm.contact(EMAIL).tag_slugs) == KYC_TAGS | {"newsletter"}
    assert erase_jobs(crm_runtime) == [] and EMAIL not in stored_text(crm_runtime)


def test_without_fluentcrm_nothing_is_queued(client, runtime, config):  # type: ignore[no-untyped-def]
    onboard_and_approve(client, config)
    body = client.post(f"/api/v1/contacts/{EMAIL}/erase", headers=admin_headers()).get_json()
    assert body["crm_tags"] == "not configured" and erase_jobs(runtime) == []


def test_a_dead_job_keeps_no_email_either(crm_runtime, config, fluentcrm):  # type: ignore[no-untyped-def]
    client = approved_and_tagged(crm_runtime, config, fluentcrm)
    client.post(f"/api/v1/contacts/{EMAIL}/erase", headers=admin_headers())
    fluentcrm.inject(401, count=None)  # the application password was revoked: no retry helps
    Worker(crm_runtime).drain()
    [job] = erase_jobs(crm_runtime)
    assert job.state == queue.DEAD and json.loads(job.payload) == {"contact_id": 1}
    assert EMAIL not in stored_text(crm_runtime)
    # Retried by an operator, it cannot act without the email, and says so.
    fluentcrm.clear_faults()
    with transaction(crm_runtime.sessions) as session:
        queue.requeue(session, [job.id], now=datetime.now(UTC))
    Worker(crm_runtime).drain()
    assert "no email in the job" in (erase_jobs(crm_runtime)[0].result or "")


def test_the_retention_purge_clears_an_email_a_finished_job_still_holds(runtime):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with transaction(runtime.sessions) as session:  # as an older version, or a hand-made fix, may leave it
        queue.enqueue(session, queue.CRM_ERASE, inquiry_id=None, payload={"contact_id": 7, "email": EMAIL},
                      max_attempts=3, now=now)
        queue.enqueue(session, queue.CRM_ERASE, inquiry_id=None, payload={"contact_id": 8, "email": "q@example.com"},
                      max_attempts=3, now=now)
        session.execute(sa.update(Job).where(Job.payload.like("%contact_id\":7%")).values(state=queue.DONE))
    with transaction(runtime.sessions) as session:
        assert privacy.purge_payloads(session, before=now - timedelta(days=30), now=now) == 1
    payloads = [json.loads(j.payload) for j in erase_jobs(runtime)]
    assert {"contact_id": 7} in payloads  # done: cleared
    assert {"contact_id": 8, "email": "q@example.com"} in payloads  # still queued: it needs the email to run
