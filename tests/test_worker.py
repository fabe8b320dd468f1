"""The outbox worker: leases, retries with backoff, dead letters, concurrency, `jobs` commands."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from bridge.outbox import backoff
from bridge.app.cli import main
from bridge.sinks.errors import SinkError
from bridge.store import queue
from bridge.store.models import AuditEntry, Job
from bridge.outbox.worker import Worker
from conftest import wait_until

CHILD = Path(__file__).with_name("child_worker.py")
T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self, start=T0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


def add_jobs(runtime, n, kind="test.job", max_attempts=3, now=None):
    with runtime.sessions.begin() as session:
        for i in range(n):
            queue.enqueue(session, kind, inquiry_id=f"inq_{i}", payload={"n": i}, max_attempts=max_attempts,
                          now=now or datetime.now(timezone.utc))


def job_rows(runtime):
    with runtime.sessions() as session:
        return session.scalars(sa.select(Job).order_by(Job.id)).all()


def test_success_marks_done_with_result_and_audits(runtime):
    add_jobs(runtime, 2)
    outcomes = Worker(runtime, {"test.job": lambda job: f"ok {job.payload['n']}"}).drain()
    assert [o.outcome for o in outcomes] == ["done", "done"]
    assert [(j.state, j.result, j.attempts) for j in job_rows(runtime)] == [("done", "ok 0", 1), ("done", "ok 1", 1)]
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "job.done")) == 2


def test_retryable_failure_backs_off_then_dead_letters_with_reason(runtime):
    clock = Clock()
    runtime.clock = clock
    add_jobs(runtime, 1, max_attempts=3, now=clock())
    failing = Worker(runtime, {"test.job": lambda job: (_ for _ in ()).throw(SinkError("FluentCRM answered 503", retryable=True))})

    assert [o.outcome for o in failing.run_once()] == ["retry"]
    job = job_rows(runtime)[0]
    assert job.state == "queued" and job.attempts == 1 and job.last_error == "FluentCRM answered 503"
    first_delay = (job.run_after - clock()).total_seconds()
    assert runtime.config.backoff_base_seconds / 2 <= first_delay <= runtime.config.backoff_base_seconds
    assert failing.run_once() == []  # not due yet

    clock.advance(first_delay + 0.001)
    assert [o.outcome for o in failing.run_once()] == ["retry"]
    second_delay = (job_rows(runtime)[0].run_after - clock()).total_seconds()
    assert second_delay >= runtime.config.backoff_base_seconds  # grew exponentially

    clock.advance(second_delay + 0.001)
    assert [o.outcome for o in failing.run_once()] == ["dead"]
    job = job_rows(runtime)[0]
    assert job.state == "dead" and job.attempts == 3
    assert job.last_error == "FluentCRM answered 503 (gave up after 3 attempts)"
    with runtime.sessions() as session:
        actions = session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions == ["job.retry", "job.retry", "job.dead"]


def test_permanent_failure_dead_letters_at_once(runtime):
    add_jobs(runtime, 1)
    Worker(runtime, {"test.job": lambda job: (_ for _ in ()).throw(SinkError("FluentCRM answered 401", retryable=False))}).drain()
    job = job_rows(runtime)[0]
    assert (job.state, job.attempts, job.last_error) == ("dead", 1, "FluentCRM answered 401")


def test_unknown_kind_and_unexpected_exception(runtime):
    add_jobs(runtime, 1, kind="mystery")
    add_jobs(runtime, 1, kind="test.job")
    outcomes = Worker(runtime, {"test.job": lambda job: 1 / 0}).run_once()
    assert sorted(o.outcome for o in outcomes) == ["dead", "retry"]
    rows = {j.kind: j for j in job_rows(runtime)}
    assert "no handler" in rows["mystery"].last_error
    assert rows["test.job"].last_error == "unexpected ZeroDivisionError"


def test_backoff_grows_is_capped_and_jittered():
    import random

    rng = random.Random(7)
    delays = [backoff.delay_seconds(n, base=5, cap=60, rng=rng) for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        full = min(60, 5 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jitter: capped delays still differ


def test_worker_killed_mid_job_leaves_it_to_be_rerun_after_the_lease(runtime, tmp_path):
    add_jobs(runtime, 1)
    log = tmp_path / "claims.log"
    child = subprocess.Popen([sys.executable, str(CHILD), "hang", runtime.settings.database_url, str(log)],
                             env={**os.environ, "LEASE_SECONDS": "3", "BATCH": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text().startswith("claimed 1 attempt 1")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    job = job_rows(runtime)[0]
    assert job.state == "running" and job.attempts == 1  # not lost, not done

    rerun = []
    survivor = Worker(runtime, {"test.job": lambda job: rerun.append(job.id) or "re-run"})
    assert survivor.run_once() == []  # the lease still holds
    outcomes = wait_until(survivor.run_once, "the 3 s lease to run out and the job to run again", seconds=30)
    assert [o.outcome for o in outcomes] == ["done"]
    assert rerun == [1]
    job = job_rows(runtime)[0]
    assert (job.state, job.attempts, job.result) == ("done", 2, "re-run")


def test_a_worker_whose_lease_was_taken_over_cannot_overwrite_the_outcome(runtime):
    clock = Clock()
    runtime.clock = clock
    add_jobs(runtime, 1, now=clock())
    with runtime.sessions.begin() as session:
        slow = queue.claim(session, now=clock(), lease_seconds=10, limit=1)[0]
    clock.advance(11)
    Worker(runtime, {"test.job": lambda job: "second"}).run_once()
    with runtime.sessions.begin() as session:
        assert not queue.complete(session, slow, now=clock(), result="first, too late")
    assert job_rows(runtime)[0].result == "second"


def test_several_worker_processes_never_run_one_job_twice(runtime, tmp_path):
    total = 150
    add_jobs(runtime, total)
    log = tmp_path / "runs.log"
    children = [subprocess.Popen([sys.executable, str(CHILD), "record", runtime.settings.database_url, str(log)],
                                 env={**os.environ, "BATCH": "3"}) for _ in range(3)]
    for child in children:
        assert child.wait(150) == 0
    runs = [line.split() for line in log.read_text().splitlines()]
    per_job = Counter(job_id for job_id, _ in runs)
    assert len(per_job) == total and max(per_job.values()) == 1, per_job.most_common(3)
    assert len({pid for _, pid in runs}) >= 2  # the work really was shared
    assert {j.state for j in job_rows(runtime)} == {"done"}


def test_jobs_list_and_retry_commands(runtime, monkeypatch):
    add_jobs(runtime, 2)
    Worker(runtime, {"test.job": lambda job: (_ for _ in ()).throw(SinkError("FluentCRM answered 401", retryable=False))}).drain()
    for name, value in {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "k",
                        "BRIDGE_ADMIN_TOKEN": "t", "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    listing = runner.invoke(main, ["jobs", "list", "--state", "dead"])
    assert listing.exit_code == 0 and listing.output.count("FluentCRM answered 401") == 2
    assert runner.invoke(main, ["jobs", "retry"]).exit_code != 0  # needs ids or --all
    retried = runner.invoke(main, ["jobs", "retry", "1"])
    assert retried.exit_code == 0 and "re-queued 1 job(s): 1" in retried.output
    rows = {j.id: j for j in job_rows(runtime)}
    assert (rows[1].state, rows[1].attempts) == ("queued", 0) and rows[2].state == "dead"
    unknown = runner.invoke(main, ["jobs", "retry", "99"])
    assert unknown.exit_code == 1 and "99" in unknown.output
    assert runner.invoke(main, ["jobs", "retry", "--all"]).exit_code == 0
    assert {j.state for j in job_rows(runtime)} == {"queued"}
    Worker(runtime, {"test.job": lambda job: "fixed"}).drain()
    assert "fixed" in runner.invoke(main, ["jobs", "list"]).output


def test_failed_jobs_waiting_for_retry_can_be_made_due_now(runtime, monkeypatch):
    clock = Clock(datetime.now(timezone.utc))
    runtime.clock = clock
    add_jobs(runtime, 1, now=clock())
    Worker(runtime, {"test.job": lambda job: (_ for _ in ()).throw(SinkError("timeout", retryable=True))}).run_once()
    with runtime.sessions.begin() as session:
        assert [j.id for j in queue.list_jobs(session, [queue.FAILED], 10)] == [1]
        assert queue.requeue(session, None, now=clock()) == [1]
    job = job_rows(runtime)[0]
    assert job.state == "queued" and job.attempts == 1 and job.run_after == clock()
