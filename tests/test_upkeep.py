"""Upkeep without cron: `serve` and `worker` run `remind`, `renew` and `retention purge` on the `[schedule]`
of the config, once per interval across all processes (a lease row in the store)."""

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomllib

from bridge import config as config_module
from bridge.outbox import schedule
from bridge.outbox.upkeep import TaskResult, Upkeep
from bridge.outbox.worker import start_in_thread
from bridge.store import leases
from bridge.store.models import AuditEntry, Event, Lease, Reminder
from bridge.persona import samples
from conftest import post_event, wait_until
from bridge.web import create_app

CHILD = Path(__file__).with_name("child_upkeep.py")
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self, start=T0):
        self.now = start
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.now

    def set(self, at):
        with self.lock:
            self.now = at


def runs(runtime, task=None):
    query = sa.select(sa.func.count()).where(AuditEntry.action == "upkeep.ran")
    if task:
        query = query.where(AuditEntry.subject == f"upkeep:{task}")
    with runtime.sessions() as session:
        return session.scalar(query)


def lease_row(runtime, name):
    with runtime.sessions() as session:
        return session.get(Lease, name)


def scheduled(config, every, ttl="15m"):
    return replace(config, schedule=config_module.ScheduleConfig(
        {task: config_module.duration_seconds(value) for task, value in every.items()},
        lease_ttl_seconds=config_module.duration_seconds(ttl)))


# The rule and the settings ------------------------------------------------------------------

def test_a_task_is_due_when_it_never_ran_or_its_interval_has_passed():
    assert schedule.is_due(None, HOUR, T0)
    assert not schedule.is_due(T0, HOUR, T0 + HOUR - timedelta(microseconds=1))
    assert schedule.is_due(T0, HOUR, T0 + HOUR)


def test_a_process_looks_again_when_the_task_falls_due_or_another_holders_lease_runs_out():
    assert schedule.next_look(T0, HOUR, None, T0 + timedelta(minutes=5)) == T0 + HOUR
    assert schedule.next_look(None, HOUR, None, T0) == T0
    held_until = T0 + 2 * HOUR
    assert schedule.next_look(None, HOUR, held_until, T0) == held_until  # the holder may have died
    assert schedule.next_look(T0, HOUR, T0 - HOUR, T0 + 3 * HOUR) == T0 + 3 * HOUR  # overdue: now


def _parse(section):
    document = tomllib.loads((Path(config_module.__file__).with_name("default_config.toml")).read_text())
    document["schedule"] = section
    return config_module.parse(document, "site.toml").schedule


def test_schedule_settings_parse_durations_and_zero_or_unset_is_off():
    assert dict(config_module.load(None).schedule.every_seconds) == {"remind": 3600, "renew": 3600, "retention": 86400,
                                                                     "review_overdue": 900}
    parsed = _parse({"remind_every": "90s", "retention_every": "0", "lease_ttl": "2m"})
    assert dict(parsed.every_seconds) == {"remind": 90} and parsed.lease_ttl_seconds == 120
    assert dict(_parse({}).every_seconds) == {}
    assert dict(_parse({"remind_every": "1d", "retention_every": 0}).every_seconds) == {"remind": 86400}


@pytest.mark.parametrize("section, message", [
    ({"remind_every": "hourly"}, "site.toml: schedule.remind_every: 'hourly' is not a duration"),
    ({"retention_every": 3600}, "site.toml: schedule.retention_every: 3600 is not a duration"),
    ({"reconcile_every": "1d", "reconcile_window": "2h"}, "site.toml: schedule.reconcile_window: must be at least"),
    ({"reconcile_every": "hourly"}, "site.toml: schedule.reconcile_every: 'hourly' is not a duration"),
    ({"lease_ttl": "0"}, "site.toml: schedule.lease_ttl: must be greater than 0"),
])
def test_bad_schedule_settings_name_the_key(section, message):
    with pytest.raises(config_module.ConfigError, match=message):
        _parse(section)


# The lease -----------------------------------------------------------------------------------

def test_a_lease_is_exclusive_until_it_expires_then_taken_over(runtime):
    ttl = timedelta(minutes=15)
    with runtime.sessions.begin() as session:
        taken, state = leases.try_take(session, "remind", "a", now=T0, ttl=ttl, wanted=lambda s: True)
    assert taken and state.holder is None and state.last_run_at is None
    with runtime.sessions.begin() as session:
        taken, state = leases.try_take(session, "remind", "b", now=T0 + ttl - timedelta(microseconds=1), ttl=ttl,
                                       wanted=lambda s: True)
    assert not taken and state.holder == "a"  # still a's at the last instant
    with runtime.sessions.begin() as session:
        assert not leases.try_take(session, "remind", "b", now=T0, ttl=ttl, wanted=lambda s: False)[0]
        taken, _ = leases.try_take(session, "remind", "b", now=T0 + ttl, ttl=ttl, wanted=lambda s: True)
    assert taken
    with runtime.sessions.begin() as session:
        assert not leases.finish(session, "remind", "a", ran_at=T0)  # a came back too late: not recorded
        assert leases.finish(session, "remind", "b", ran_at=T0 + ttl)
    row = lease_row(runtime, "remind")
    assert (row.holder, row.expires_at, row.last_run_at) == (None, None, T0 + ttl)


# In serve's runtime, with a fake clock ----------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])
def test_serve_runs_remind_and_retention_on_schedule(n8n_runtime):
    """`serve` starts its outbox worker with start_in_thread (bridge/app/server.py): the bundled
    schedule (remind every 1 h, retention every 24 h) runs there with no cron. (The review SLA's
    15-minute pass is left out here: tests/test_review_sla.py covers it.)"""
    from test_n8n_remind import start

    runtime = n8n_runtime
    runtime.config = scheduled(runtime.config, {"remind": "1h", "retention": "24h"})
    clock = Clock()
    runtime.clock = clock
    start(runtime, at=T0 - timedelta(minutes=30))  # stalled; its 24 h reminder falls due at T0 + 23.5 h
    post_event(create_app(runtime=runtime).test_client(), samples.inquiry_event(
        event_id="evt_old", inquiry_id="inq_old", status="pending", created_at=T0, template_id=None))
    with runtime.sessions.begin() as session:
        session.execute(sa.update(Event).values(received_at=T0 - timedelta(days=31)))

    thread, stop = start_in_thread(runtime)
    try:
        wait_until(lambda: runs(runtime, "remind") == 1 and runs(runtime, "retention") == 1, "the first runs")
        with runtime.sessions() as session:
            assert session.scalar(sa.select(Event.payload)) is None  # retention dropped the old body
            assert session.scalar(sa.select(sa.func.count()).select_from(Reminder)) == 0  # not due yet

        clock.set(T0 + HOUR)
        wait_until(lambda: runs(runtime, "remind") == 2, "remind an hour later")
        clock.set(T0 + 25 * HOUR)
        wait_until(lambda: runs(runtime, "remind") == 3 and runs(runtime, "retention") == 2, "a day later")
        with runtime.sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Reminder)) == 1  # the 24 h window
    finally:
        stop.set()
        thread.join(30)
    # Retention ran at T0 and T0 + 25 h only; remind at T0, +1 h and +25 h.
    assert (runs(runtime, "remind"), runs(runtime, "retention")) == (3, 2)
    assert lease_row(runtime, "retention").last_run_at == T0 + 25 * HOUR
    assert lease_row(runtime, "remind").last_run_at == T0 + 25 * HOUR
    clock.set(T0 + 25 * HOUR + timedelta(minutes=59))
    assert Upkeep(runtime).tick() == []  # a restarted serve (no memory of its own) finds nothing due


def test_no_schedule_no_upkeep(runtime):
    runtime.config = scheduled(runtime.config, {})
    upkeep = Upkeep(runtime)
    assert upkeep.tick() == [] and runs(runtime) == 0
    assert "off" in upkeep.describe()[0]


def test_a_failed_run_is_not_recorded_and_frees_the_lease(runtime):
    runtime.config = scheduled(runtime.config, {"remind": "1h"})
    clock = Clock()
    runtime.clock = clock
    upkeep = Upkeep(runtime, {"remind": lambda rt, now: 1 / 0})
    assert [r.outcome for r in upkeep.tick()] == ["failed"]
    row = lease_row(runtime, "remind")
    assert (row.holder, row.last_run_at) == (None, None) and runs(runtime) == 0
    other = Upkeep(runtime, {"remind": lambda rt, now: TaskResult(0, "ok")}, holder="other")
    assert [r.outcome for r in other.tick()] == ["done"]  # another process may run it at once
    assert runs(runtime) == 1


# Across worker processes (PostgreSQL, MariaDB, SQLite) ------------------------------------------

def _child(runtime, folder, **env):
    return subprocess.Popen([sys.executable, str(CHILD), runtime.settings.database_url, str(folder)],
                            env={**os.environ, **env})


def _log(folder):
    path = folder / "log"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def test_two_worker_processes_due_at_once_run_the_task_once(runtime, tmp_path):
    """Both processes start their loop at the same moment (a go file) with the task due. The one
    that gets the lease holds it until both have tried, so the other cannot simply come after it:
    exactly one runs. After the run the task is not due for any process."""
    children = [_child(runtime, tmp_path) for _ in range(2)]
    try:
        (tmp_path / "go").touch()
        wait_until(lambda: len([w for w in _log(tmp_path) if w in ("started", "skipped")]) >= 2,
                   "both processes to try")
        assert sorted(w for w in _log(tmp_path) if w in ("started", "skipped")) == ["skipped", "started"]
        (tmp_path / "release").touch()
        wait_until(lambda: "ran" in _log(tmp_path), "the run to be recorded")
        (tmp_path / "stop").touch()
        for child in children:
            assert child.wait(60) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert _log(tmp_path).count("started") == 1
    assert runs(runtime, "remind") == 1
    row = lease_row(runtime, "remind")
    assert row.holder is None and row.last_run_at is not None

    runtime.config = scheduled(runtime.config, {"remind": "1h"})
    assert Upkeep(runtime, {"remind": lambda rt, now: TaskResult(0, "again")}).tick() == []  # not due
    assert runs(runtime, "remind") == 1


def test_a_lease_held_by_a_dead_worker_expires_and_is_taken_over(runtime, tmp_path):
    child = _child(runtime, tmp_path, LEASE_TTL="30s")
    try:
        (tmp_path / "go").touch()
        wait_until(lambda: "started" in _log(tmp_path), "the child to take the lease")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    row = lease_row(runtime, "remind")
    assert row.holder is not None and row.last_run_at is None  # held, never recorded

    clock = Clock(datetime.now(timezone.utc))
    runtime.clock = clock
    runtime.config = scheduled(runtime.config, {"remind": "1h"}, ttl="30s")
    survivor = Upkeep(runtime, {"remind": lambda rt, now: TaskResult(0, "taken over")}, holder="survivor")
    assert survivor.run_if_due("remind", clock()) is None  # the dead holder's lease still runs
    clock.set(row.expires_at + timedelta(seconds=1))
    assert survivor.run_if_due("remind", clock()).outcome == "done"
    assert runs(runtime, "remind") == 1
    row = lease_row(runtime, "remind")
    assert row.holder is None and row.last_run_at == clock()


# The row lock, with the interleaving forced ------------------------------------------------------

_LOCK_WAITERS = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    # A lock wait on a primary key shows as a statement still running (state "Statistics"), and the
    # waiter is not always listed in INNODB_TRX.
    "mysql": "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND COMMAND = 'Query' "
             "AND INFO LIKE '%kyc_leases%' AND ID <> CONNECTION_ID()",
}


@pytest.mark.parametrize("backend", ["mariadb", "postgres"])  # SQLite: BEGIN IMMEDIATE and the writer queue serialise
@pytest.mark.parametrize("row_exists", [False, True], ids=["first-use", "existing-row"])
def test_a_second_taker_waits_for_the_first_and_then_sees_its_lease(runtime, row_exists):
    """A has locked the lease row (or inserted it: the first use) and not committed; B asks now.
    B must wait for A's commit and then find the lease held, not take it too."""
    from bridge.store.engine import transaction

    ttl = timedelta(minutes=15)
    if row_exists:
        with runtime.sessions.begin() as session:
            leases.try_take(session, "remind", "old", now=T0 - 2 * ttl, ttl=ttl, wanted=lambda s: True)
            leases.finish(session, "remind", "old", ran_at=None)
    waiters = sa.text(_LOCK_WAITERS[runtime.engine.dialect.name])
    second = {}

    def b_takes():
        with transaction(runtime.sessions) as session:
            second["taken"], second["state"] = leases.try_take(session, "remind", "b", now=T0, ttl=ttl,
                                                               wanted=lambda s: True)

    def while_a_holds_the_row(state):
        thread = threading.Thread(target=b_takes)
        thread.start()
        second["thread"] = thread
        # Autocommit: PostgreSQL keeps one statistics snapshot per transaction.
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as observer:
            wait_until(lambda: not thread.is_alive() or observer.execute(waiters).scalar() > 0, "B to block")
        return True

    with transaction(runtime.sessions) as session:
        taken, _ = leases.try_take(session, "remind", "a", now=T0, ttl=ttl, wanted=while_a_holds_the_row)
    second["thread"].join(30)
    assert taken
    assert second["taken"] is False and second["state"].holder == "a"
    assert lease_row(runtime, "remind").holder == "a"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_remind_without_n8n_is_recorded_as_skipped(runtime):
    """As `kyc-bridge remind`: without N8N_WEBHOOK_URL no reminder is recorded (none could be sent)."""
    import json

    upkeep = Upkeep(runtime)
    assert [(r.task, r.outcome) for r in upkeep.tick()] == [("remind", "done"), ("renew", "done"), ("retention", "done"),
                                                             ("review_overdue", "done")]
    with runtime.sessions() as session:
        details = dict(session.execute(sa.select(AuditEntry.subject, AuditEntry.detail)
                                       .where(AuditEntry.action == "upkeep.ran")).all())
    assert json.loads(details["upkeep:remind"])["outcome"] == "skipped"
    assert json.loads(details["upkeep:review_overdue"])["outcome"] == "skipped"  # no alert marked as sent
    assert json.loads(details["upkeep:retention"])["outcome"] == "done"
    assert json.loads(details["upkeep:renew"])["outcome"] == "skipped"  # no user type has renewals


@pytest.mark.parametrize("backend", ["sqlite"])
def test_worker_once_runs_the_upkeep_that_is_due(runtime, monkeypatch):
    """`worker --once` from cron does what a running worker does in one round: the due upkeep too."""
    from click.testing import CliRunner

    from bridge.app.cli import main

    from conftest import ADMIN_TOKEN, WEBHOOK_SECRET

    for name, value in {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "k",
                        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN, "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET}.items():
        monkeypatch.setenv(name, value)
    for name in ("BRIDGE_CONFIG_FILE", "N8N_WEBHOOK_URL", "FLUENTCRM_BASE_URL", "PERSONA_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # the bundled [schedule]: remind 1h, retention 24h
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert runs(runtime, "remind") == 1 and runs(runtime, "retention") == 1
    assert "upkeep retention: done" in result.output
    first = runs(runtime)
    again = CliRunner().invoke(main, ["worker", "--once"])  # not due again within the hour
    assert again.exit_code == 0 and runs(runtime) == first
