"""One write at a time per person, newest state last (issue 15, part 1), on every backend.

The FluentCRM double holds a chosen request until the test releases it, so each interleaving
below is forced, not hoped for.
"""

import threading
from datetime import datetime, timedelta, timezone

import pytest

from bridge.outbox.worker import Worker
from bridge.persona import samples
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.web import create_app
from conftest import admin_headers, new_id, post_event

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
EMAIL = "pat@example.com"
PUT_CONTACT = r"/subscribers/\d+"


@pytest.fixture
def client(crm_runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=crm_runtime).test_client()


def deliver(client, config, status, minutes, inquiry_id="inq_one1"):  # type: ignore[no-untyped-def]
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                 created_at=T0 + timedelta(minutes=minutes), email=EMAIL, first_name="Pat",
                                 template_id=config.user_types["investor"].template_id)
    assert post_event(client, body).status_code == 200


def tags_of(fluentcrm):  # type: ignore[no-untyped-def]
    return set(fluentcrm.contact(EMAIL).tag_slugs)


def test_an_older_write_held_in_flight_cannot_land_after_a_newer_one(client, crm_runtime, config, fluentcrm):
    """The interleaving of the issue: job A read "completed" and is still talking to FluentCRM when
    the approval arrives; job B (queued for the approval) gets every chance to run on another worker
    and finish; then A's write lands. The contact must end approved, not submitted."""
    fluentcrm.add_contact(EMAIL, first_name="Pat", status="subscribed")  # A's write is then one PUT
    deliver(client, config, "completed", 1)
    held = fluentcrm.hold("PUT", PUT_CONTACT)
    worker_a = Worker(crm_runtime, name="worker-a")
    ran_a: list = []
    thread = threading.Thread(target=lambda: ran_a.extend(worker_a.run_once()))
    thread.start()
    assert held.arrived.wait(30), "job A never wrote"

    deliver(client, config, "approved", 2)
    Worker(crm_runtime, name="worker-b").drain()  # job B: today it syncs "approved" and finishes here
    held.release()
    thread.join(30)
    assert not thread.is_alive()
    Worker(crm_runtime).drain()  # whatever is left

    assert tags_of(fluentcrm) == {"kyc-approved", "kyc-type-investor"}
    view = client.get("/api/v1/inquiries/inq_one1", headers=admin_headers()).get_json()
    assert view["status"] == "approved" and view["crm_sync"] == "done"


def test_a_sync_writes_again_when_the_state_moved_during_its_write(client, crm_runtime, config, fluentcrm):
    fluentcrm.add_contact(EMAIL, first_name="Pat", status="subscribed")
    deliver(client, config, "completed", 1)
    held = fluentcrm.hold("PUT", PUT_CONTACT)
    outcomes: list = []
    thread = threading.Thread(target=lambda: outcomes.extend(Worker(crm_runtime).run_once()))
    thread.start()
    assert held.arrived.wait(30)
    deliver(client, config, "approved", 2)
    held.release()
    thread.join(30)
    # The running job itself put the newest state last, before the approval's own job ran.
    assert tags_of(fluentcrm) == {"kyc-approved", "kyc-type-investor"}
    [sync] = [o for o in outcomes if o.kind == queue.CRM_SYNC]
    assert sync.outcome == "done" and "synced again" in sync.detail
    fluentcrm.clear_requests()
    Worker(crm_runtime).drain()
    assert fluentcrm.writes() == []  # the approval's job finds the contact right already


def test_a_worker_that_lost_its_lease_never_writes(client, crm_runtime, config, fluentcrm):
    clock = [datetime.now(timezone.utc)]
    crm_runtime.clock = lambda: clock[0]
    fluentcrm.add_contact(EMAIL, first_name="Pat", status="subscribed")
    deliver(client, config, "approved", 1)
    slow = Worker(crm_runtime, name="paused")
    [job] = [j for j in slow.claim(10) if j.kind == queue.CRM_SYNC]
    clock[0] += timedelta(seconds=config.lease_seconds + 1)  # the paused worker's lease runs out...
    taken = Worker(crm_runtime, name="other").claim(10)  # ...and another worker takes the job over
    assert [j.id for j in taken if j.kind == queue.CRM_SYNC] == [job.id]
    fluentcrm.clear_requests()
    outcome = slow._run(job)  # the paused worker wakes up and carries on
    assert fluentcrm.writes() == []
    assert outcome.outcome == "lost"


def test_a_busy_worker_renews_its_lease_so_nobody_takes_its_job(client, crm_runtime, config):
    clock = [datetime.now(timezone.utc)]
    crm_runtime.clock = lambda: clock[0]
    deliver(client, config, "approved", 1)
    busy = Worker(crm_runtime, name="busy")
    jobs = busy.claim(10)
    for job in jobs:
        busy._track(job)  # as run_forever does while the job runs
    for _ in range(3):  # three heartbeats, each well inside the lease; together well past it
        clock[0] += timedelta(seconds=config.lease_seconds * 0.6)
        assert busy.heartbeat() == []
    assert Worker(crm_runtime, name="other").claim(10) == []


def test_several_inquiries_tag_the_person_as_the_kyc_status_api_answers(client, crm_runtime, config, fluentcrm):
    """An approved person who starts another verification stays tagged approved: the tags follow
    GET /api/v1/contacts/<email>/kyc, not the inquiry that changed last."""
    deliver(client, config, "approved", 1, inquiry_id="inq_first")
    Worker(crm_runtime).drain()
    deliver(client, config, "pending", 30, inquiry_id="inq_second")
    Worker(crm_runtime).drain()
    answer = client.get(f"/api/v1/contacts/{EMAIL}/kyc", headers=admin_headers()).get_json()
    assert answer["status"] == "approved"
    assert tags_of(fluentcrm) == {"kyc-approved", "kyc-type-investor"}
    deliver(client, config, "declined", 40, inquiry_id="inq_first")  # the approval itself is overturned
    Worker(crm_runtime).drain()
    answer = client.get(f"/api/v1/contacts/{EMAIL}/kyc", headers=admin_headers()).get_json()
    assert answer["status"] == "declined"
    assert tags_of(fluentcrm) == {"kyc-declined", "kyc-type-investor"}


@pytest.mark.parametrize("key_seen_before", [False, True])
def test_two_claimers_racing_for_one_persons_jobs_get_one_between_them(runtime, config, key_seen_before):
    """Claimer 1 takes one of a person's jobs and has not committed yet when claimer 2 looks: claimer 2
    must not take the other one (it waits for claimer 1's key, then finds it held)."""
    now = datetime.now(timezone.utc)
    key = queue.contact_key(7, None)

    def add(n: int) -> None:
        with transaction(runtime.sessions) as session:
            for i in range(n):
                queue.enqueue(session, queue.CRM_TAG, inquiry_id=None, payload={"contact_id": 7, "n": i},
                              max_attempts=3, now=now, contact_key=key)

    if key_seen_before:  # the key's row exists, free: claimers race on one UPDATE
        add(1)
        with transaction(runtime.sessions) as session:
            [first] = queue.claim(session, now=now, lease_seconds=60, limit=5)
        with transaction(runtime.sessions) as session:
            assert queue.complete(session, first, now=now, result="ok")
    add(2)
    second: list = []
    with transaction(runtime.sessions) as session:
        mine = queue.claim(session, now=now, lease_seconds=60, limit=1)
        assert len(mine) == 1
        other = threading.Thread(target=lambda: second.extend(_claim(runtime, now)))
        other.start()
        other.join(1.0)  # give claimer 2 its chance inside claimer 1's open transaction
    other.join(30)
    assert second == []


def _claim(runtime, now):  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return queue.claim(session, now=now, lease_seconds=60, limit=5)


def test_an_outcome_is_recorded_after_a_transient_store_error(client, crm_runtime, config, fluentcrm, monkeypatch):
    """A deadlock victim (MariaDB) or a dropped connection while recording must not leave the job
    `running`, holding its person's key until the lease runs out: recording is tried again."""
    from bridge.store.engine import StoreUnavailable

    deliver(client, config, "approved", 1)
    real_complete, failures = queue.complete, [1]

    def complete_after_one_failure(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            failures.pop()
            raise StoreUnavailable("deadlock")
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(queue, "complete", complete_after_one_failure)
    outcomes = Worker(crm_runtime).run_once()
    assert [o.outcome for o in outcomes if o.kind == queue.CRM_SYNC] == ["done"]
    with transaction(crm_runtime.sessions) as session:
        assert queue.claim(session, now=crm_runtime.clock(), lease_seconds=60, limit=10) == []
