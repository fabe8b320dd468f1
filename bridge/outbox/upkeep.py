"""Upkeep that `serve` and `worker` run themselves on the `[schedule]` of the TOML config, so no
cron is needed (the `remind` and `retention purge` commands stay for those who prefer cron).

Each task has a lease row (bridge/store/leases.py): whichever process finds it due first takes the
lease, runs it and records the run with an `upkeep.ran` audit entry; the others skip it until its
interval has passed again. A runner that dies mid-run holds the lease until `lease_ttl` runs out,
then the next process to look takes it over and runs the task again.

A task is a function (runtime, now) → TaskResult, registered in `TASKS` under the name its
`[schedule] <name>_every` key uses (config.UPKEEP_TASKS); `reconcile` joins the same way.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bridge import audit
from bridge.config import Config
from bridge.consent import privacy
from bridge.outbox import remind, renew, review_sla, schedule
from bridge.store import leases
from bridge.store.engine import StoreUnavailable, transaction

if TYPE_CHECKING:
    from bridge.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    count: int  # what the run did: reminders queued, bodies dropped…
    summary: str  # one line, no personal data
    outcome: str = "done"  # or "skipped": nothing to do in this set-up (it still counts as the run)


def run_remind(runtime: Runtime, now: datetime) -> TaskResult:
    if not runtime.settings.n8n_enabled:  # as `kyc-bridge remind`: record nothing that could not be sent
        return TaskResult(0, "skipped: n8n events off (N8N_WEBHOOK_URL unset)", outcome="skipped")
    report = remind.run(runtime.sessions, runtime.config, now=now)
    return TaskResult(report.queued, f"{report.queued} reminder(s) queued; {report.already_sent} already sent")


def run_renew(runtime: Runtime, now: datetime) -> TaskResult:
    """Renewal notices (only with n8n on: nothing recorded that could not be sent) and lapses
    (always: the status, the audit entry and the FluentCRM tag do not need n8n)."""
    if not runtime.config.renewals_on:
        return TaskResult(0, "skipped: no user type has reverify_after_days", outcome="skipped")
    report = renew.run(runtime.sessions, runtime.config, now=now, notices=runtime.settings.n8n_enabled)
    return TaskResult(report.notices + report.lapsed, renew.summary(report, notices=runtime.settings.n8n_enabled))


def run_review_overdue(runtime: Runtime, now: datetime) -> TaskResult:
    if not runtime.settings.n8n_enabled:  # as remind: mark no case alerted whose alert could not be sent
        return TaskResult(0, "skipped: n8n events off (N8N_WEBHOOK_URL unset)", outcome="skipped")
    report = review_sla.run(runtime.sessions, runtime.config, now=now)
    return TaskResult(report.queued, f"{report.queued} kyc.review_overdue event(s) queued; "
                                     f"{report.overdue} review(s) overdue")


def retention_cutoff(config: Config, now: datetime) -> datetime:
    return now - timedelta(days=config.payload_retention_days)


def run_retention(runtime: Runtime, now: datetime) -> TaskResult:
    cutoff = retention_cutoff(runtime.config, now)
    with transaction(runtime.sessions) as session:
        count = privacy.purge_payloads(session, before=cutoff, now=now)
    return TaskResult(count, f"dropped {count} webhook bodies received before {cutoff:%Y-%m-%d %H:%M} UTC")


Task = Callable[["Runtime", datetime], TaskResult]
# The outbox's own tasks; the runtime adds the others (reconcile is the intake's: runtime.upkeep_tasks).
TASKS: dict[str, Task] = {"remind": run_remind, "renew": run_renew, "retention": run_retention,
                          "review_overdue": run_review_overdue}


@dataclass(frozen=True)
class Ran:
    task: str
    outcome: str  # done | failed | lost (the lease ran out mid-run and another process took it)
    detail: str


class Upkeep:
    """The scheduled tasks of one process. `tick()` is cheap when nothing is due: it asks the store
    only when a task may have fallen due (see schedule.next_look)."""

    def __init__(self, runtime: Runtime, tasks: dict[str, Task] | None = None, *, holder: str | None = None):
        self.runtime = runtime
        every = runtime.config.schedule.every_seconds
        registry = runtime.upkeep_tasks() if tasks is None else tasks
        self.tasks = {name: registry[name] for name in every if name in registry}
        self.every = {name: timedelta(seconds=every[name]) for name in self.tasks}
        self.ttl = timedelta(seconds=runtime.config.schedule.lease_ttl_seconds)
        self.holder = (holder or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}")[:128]  # the column
        self._look_at: dict[str, datetime] = {}

    def describe(self) -> list[str]:
        if not self.tasks:
            return ["scheduled upkeep: off ([schedule] sets none; run remind and retention purge from cron)"]
        return [f"scheduled upkeep: {name} every {_human(self.every[name])}" for name in self.tasks]

    def tick(self) -> list[Ran]:
        """Run every task that is due and whose lease we get."""
        ran = []
        for name in self.tasks:
            now = self.runtime.clock()
            look_at = self._look_at.get(name)
            if look_at is not None and now < look_at:
                continue
            outcome = self.run_if_due(name, now)
            if outcome is not None:
                ran.append(outcome)
        return ran

    def run_if_due(self, name: str, now: datetime) -> Ran | None:
        every = self.every[name]
        with transaction(self.runtime.sessions) as session:
            taken, state = leases.try_take(session, name, self.holder, now=now, ttl=self.ttl,
                                           wanted=lambda s: schedule.is_due(s.last_run_at, every, now))
        if not taken:
            self._look_at[name] = schedule.next_look(state.last_run_at, every, state.expires_at, now)
            return None
        try:
            result = self.tasks[name](self.runtime, now)
        except Exception as exc:  # keep the type only: messages may carry personal data
            log.exception("upkeep %s failed", name)
            detail = f"unexpected {type(exc).__name__}" if not isinstance(exc, StoreUnavailable) else "store unavailable"
            with transaction(self.runtime.sessions) as session:
                leases.finish(session, name, self.holder, ran_at=None)
            self._look_at[name] = now + min(every, timedelta(minutes=5))  # try again soon, not at once
            return Ran(name, "failed", detail)
        with transaction(self.runtime.sessions) as session:
            held = leases.finish(session, name, self.holder, ran_at=now)
            if held:
                audit.append(session, "upkeep.ran", f"upkeep:{name}",
                             {"kind": name, "count": result.count, "outcome": result.outcome}, at=self.runtime.clock())
        self._look_at[name] = now + every
        log.info("upkeep %s: %s", name, result.summary if held else "lease lost mid-run (ran too long?)")
        return Ran(name, "done" if held else "lost", result.summary)


def _human(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
