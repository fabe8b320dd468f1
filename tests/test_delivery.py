"""Prompt, parallel delivery (issue 15, part 2): the worker's pool, its per-sink circuit breaker,
NOTIFY on PostgreSQL, and `jobs list` naming jobs that wait for a retry."""

import logging
import threading
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from bridge.app.cli import main
from bridge.outbox.breaker import Breaker
from bridge.outbox.worker import Worker
from bridge.persona import samples
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Job
from bridge.web import create_app
from conftest import new_id, post_event, with_config

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_breaker_opens_after_repeated_failures_lets_one_probe_through_and_closes_on_success():
    breaker = Breaker("fluentcrm", failures=3, probe_seconds=5)
    assert breaker.failure("503", 0.0) is None and breaker.failure("503", 0.1) is None
    opened = breaker.failure("FluentCRM answered 503", 0.2)
    assert opened is not None and opened.opened and opened.reason == "FluentCRM answered 503"
    assert not breaker.admits(1.0)
    assert not breaker.take_probe(1.0)  # not before probe_seconds
    assert breaker.take_probe(5.3) and not breaker.take_probe(5.3)  # one probe at a time
    assert breaker.failure("503 again", 5.4) is None  # the probe failed: still down, no new warning
    assert not breaker.take_probe(6.0) and breaker.take_probe(10.5)
    closed = breaker.success()
    assert closed is not None and not closed.opened and breaker.admits(10.6)
    assert breaker.success() is None  # one "back" message only


@pytest.fixture
def client(crm_runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=crm_runtime).test_client()


def decide(client, config, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    emails = [f"person{i}@example.com" for i in range(n)]
    for i, email in enumerate(emails):
        body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=f"inq_d{i}", status="approved",
                                     created_at=T0, email=email, first_name="P",
                                     template_id=config.user_types["investor"].template_id)
        assert post_event(client, body).status_code == 200
    return emails


def crm(outcomes):  # type: ignore[no-untyped-def]
    return [o for o in outcomes if o.kind == queue.CRM_SYNC]


def test_a_sink_that_comes_back_releases_its_whole_backlog_at_once(client, crm_runtime, config, fluentcrm, caplog):
    """FluentCRM goes down: one WARNING with the reason, its jobs stop being taken; once it answers
    again, one probe succeeds, one INFO says so, and every waiting job is due now, not after its
    own backoff (the store's clock does not move in this test)."""
    crm_runtime.config = with_config(config, breaker_failures=3, breaker_probe_seconds=5.0)
    tick = [0.0]
    worker = Worker(crm_runtime)
    worker.tick = lambda: tick[0]
    emails = decide(client, config, 6)
    fluentcrm.go_down(503)
    with caplog.at_level(logging.INFO, logger="bridge.outbox.worker"):
        assert {o.outcome for o in crm(worker.drain())} == {"retry"}
        down = [r for r in caplog.records if r.levelno == logging.WARNING and "is down" in r.getMessage()]
        assert len(down) == 1 and "503" in down[0].getMessage()
        assert all("@" not in r.getMessage() for r in caplog.records)
        fluentcrm.clear_requests()
        tick[0] += 1
        assert crm(worker.drain()) == [] and fluentcrm.requests == []  # open: nothing taken
        fluentcrm.come_back_up()
        tick[0] += 5
        outcomes = crm(worker.drain())
    assert [o.outcome for o in outcomes] == ["done"] * 6
    back = [r for r in caplog.records if "is back" in r.getMessage()]
    assert len(back) == 1 and back[0].levelno == logging.INFO
    for email in emails:
        assert "kyc-approved" in fluentcrm.contact(email).tag_slugs


def test_jobs_list_shows_a_failed_job_as_waiting_for_retry_with_its_next_try(client, crm_runtime, config, fluentcrm,
                                                                           database_url, monkeypatch):
    decide(client, config, 1)
    fluentcrm.go_down(503)
    Worker(crm_runtime).drain()
    with transaction(crm_runtime.sessions) as session:
        job = session.query(Job).filter_by(kind=queue.CRM_SYNC).one()
        next_try = job.run_after
    for name, value in {"BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
                        "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "crm.sync" in line]
    assert "waiting for retry" in line and next_try.isoformat().replace("+00:00", "Z") in line


def _queue_test_jobs(runtime, n: int) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        for i in range(n):
            queue.enqueue(session, "test.job", inquiry_id=None, payload={"n": i}, max_attempts=3,
                          now=runtime.clock())


def _states(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        states: dict[str, int] = {}
        for job in session.query(Job).filter_by(kind="test.job"):
            states[job.state] = states.get(job.state, 0) + 1
        return states


def test_a_worker_runs_up_to_its_concurrency_at_once_and_claims_only_what_it_can_start(runtime):
    started = threading.Semaphore(0)
    release = threading.Event()
    running, most = [0], [0]
    lock = threading.Lock()

    def handler(job):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        started.release()
        release.wait(30)
        with lock:
            running[0] -= 1
        return "ok"

    _queue_test_jobs(runtime, 5)
    worker = Worker(runtime, {"test.job": handler}, concurrency=3)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        for _ in range(3):
            assert started.acquire(timeout=30)
        assert _states(runtime) == {"running": 3, "queued": 2}  # the other two stay free for other workers
        release.set()
        for _ in range(2):
            assert started.acquire(timeout=30)
    finally:
        release.set()
        stop.set()
        thread.join(30)
    assert _states(runtime) == {"done": 5} and most[0] == 3


@pytest.mark.parametrize("backend", ["postgres"])  # LISTEN/NOTIFY is PostgreSQL's
def test_on_postgres_a_new_job_wakes_a_sleeping_worker(backend, runtime, config):
    runtime.config = with_config(config, poll_interval_seconds=3600.0)  # it would never poll in time
    done = threading.Event()
    worker = Worker(runtime, {"test.job": lambda job: done.set() or "ok"})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        assert worker.listening.wait(30)
        _queue_test_jobs(runtime, 1)
        assert done.wait(60)  # far sooner than the hour-long poll: the queuing commit woke it
    finally:
        stop.set()
        worker.wake()
        thread.join(30)


@pytest.mark.parametrize("backend", ["postgres"])  # LISTEN/NOTIFY is PostgreSQL's
def test_on_postgres_a_webhooks_jobs_wake_a_sleeping_worker(backend, runtime, config):
    """The intake sends its NOTIFY inside the writes' pipeline (no round trip of its own)."""
    runtime.config = with_config(config, poll_interval_seconds=3600.0)
    synced = threading.Event()
    worker = Worker(runtime, {queue.CRM_SYNC: lambda job: synced.set() or "ok",
                              queue.N8N_EVENT: lambda job: "ok"})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        assert worker.listening.wait(30)
        body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=new_id("inq"), status="approved",
                                     created_at=datetime.now(timezone.utc), email="wake@example.com",
                                     template_id=config.user_types["customer"].template_id)
        assert post_event(create_app(runtime=runtime).test_client(), body).status_code == 200
        assert synced.wait(60)  # far sooner than the hour-long poll: the webhook's commit woke it
    finally:
        stop.set()
        worker.wake()
        thread.join(30)
