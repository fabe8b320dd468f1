"""The outbox worker: claims due jobs with a lease, runs their handler, records the outcome.

At-least-once: a worker killed mid-job leaves the job `running` with a lease; once the lease runs
out another worker claims it again. Handlers are idempotent, so a re-run does no harm.

One write at a time per person: jobs that write a person's FluentCRM contact carry the person's
key, and `queue.claim` hands out at most one live lease per key across all workers. A worker
renews the leases of the jobs it is still running (heartbeat), and checks its lease before each
write to FluentCRM and before recording an outcome: a worker that lost its lease never writes.

`run_forever` runs up to `[worker] concurrency` jobs at once and claims only what it can start;
on PostgreSQL it is woken by NOTIFY from the transaction that queued a job, else it polls. Each
sink has a circuit breaker (bridge.outbox.breaker).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Callable

from bridge import audit
from bridge.outbox import backoff, crm_sync, notify
from bridge.outbox.upkeep import Upkeep
from bridge.outbox.breaker import Breaker, Change
from bridge.sinks.errors import SinkError
from bridge.store import queue
from bridge.store.engine import StoreUnavailable, transaction

if TYPE_CHECKING:  # the worker is handed a runtime; building one is the entry points' job
    from bridge.runtime import Runtime

log = logging.getLogger(__name__)

Handler = Callable[[queue.ClaimedJob], str | None]


@dataclass(frozen=True)
class Outcome:
    job_id: int
    kind: str
    outcome: str  # done | retry | dead | lost (our lease was taken over)
    detail: str | None


def _slugs(tags) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(t if isinstance(t, str) else t.slug for t in tags) or "-"


class LeaseLost(Exception):
    """The job's lease (or its person's key) is no longer ours: stop before writing anything."""


# Which sink a job kind talks to: one circuit breaker per sink.
SINK_OF_KIND = {queue.CRM_SYNC: "fluentcrm", queue.CRM_TAG: "fluentcrm", queue.CRM_ERASE: "fluentcrm",
                queue.N8N_EVENT: "n8n", queue.PERSONA_REDACT: "persona"}
# A sync that finds the person's state moved during its write writes again, this many times at
# most; a state still moving after that has queued a sync of its own, which runs next.
MAX_SYNC_ROUNDS = 3
RECORD_TRIES = 5


def lease_guard(runtime: Runtime, job: queue.ClaimedJob) -> Callable[[], None]:
    """A check to run before each external write of `job`: raises LeaseLost once the lease is gone."""
    def check() -> None:
        with transaction(runtime.sessions) as session:
            if not queue.holds_lease(session, job, now=runtime.clock()):
                raise LeaseLost(f"job {job.id} lost its lease")
    return check


def _apply(client, target: crm_sync.Target | str, before_write: Callable[[], None] | None = None) -> str:  # type: ignore[no-untyped-def]
    """Send a tag plan to FluentCRM, or describe it when FluentCRM is not configured."""
    if isinstance(target, str):
        return target
    if client is None:
        return f"dry run: would attach {_slugs(target.plan.attach)}; detach {_slugs(target.plan.detach)}"
    from bridge.sinks.fluentcrm import TagRef

    if target.remove_only:
        if before_write is not None:
            before_write()
        removed = client.remove_tags(target.email, [TagRef(t.slug, t.title) for t in target.plan.detach])
        return "contact not in FluentCRM: nothing to detach" if removed is None else \
            f"contact {removed.contact_id}: detached {_slugs(removed.detached)}"
    result = client.sync_contact_tags(
        target.email, target.first_name,
        [TagRef(t.slug, t.title) for t in target.plan.attach],
        [TagRef(t.slug, t.title) for t in target.plan.detach],
        before_write=before_write,
    )
    verb = "created contact" if result.created else "contact"
    return f"{verb} {result.contact_id}: attached {_slugs(result.attached)}; detached {_slugs(result.detached)}"


def _sync_until_settled(client, read: Callable[[], crm_sync.Target | str],  # type: ignore[no-untyped-def]
                        before_write: Callable[[], None]) -> str:
    """Write the person's state, then read it again: if it moved during the write (a newer event
    arrived), write again, so the newest state is the one written last."""
    target = read()
    done: list[str] = []
    for _ in range(MAX_SYNC_ROUNDS):
        done.append(_apply(client, target, before_write))
        if isinstance(target, str) or client is None:
            break
        after = read()
        if after == target:
            break
        target = after
    return "; state moved, synced again: ".join(done)


def crm_sync_handler(runtime: Runtime) -> Handler:
    client = runtime.crm_client()
    return lambda job: _sync_until_settled(
        client, lambda: crm_sync.target(runtime.sessions, runtime.config, job.payload["inquiry_id"],
                                         now=runtime.clock()),
        lease_guard(runtime, job))


def crm_tag_handler(runtime: Runtime) -> Handler:
    client = runtime.crm_client()
    return lambda job: _apply(client, crm_sync.manual_review_target(runtime.sessions, runtime.config,
                                                                      int(job.payload["contact_id"])),
                              lease_guard(runtime, job))


def crm_erase_handler(runtime: Runtime) -> Handler:
    client = runtime.crm_client()
    return lambda job: _apply(client, crm_sync.erased_target(runtime.config, job.payload), lease_guard(runtime, job))


def persona_redact_handler(runtime: Runtime) -> Handler:
    def handle(job: queue.ClaimedJob) -> str:
        client = runtime.persona_client()
        if client is None:
            return "skipped: PERSONA_API_KEY not set"
        client.redact_inquiry(job.payload["inquiry_id"])
        return "redaction requested at Persona"

    return handle


def _deliver(client, prepared: notify.Prepared | str) -> str:  # type: ignore[no-untyped-def]
    """Send a prepared n8n event, or describe it when n8n is not configured."""
    if isinstance(prepared, str):
        return prepared
    if client is None:
        return f"dry run: would send {prepared.summary}"
    return f"sent {prepared.summary}: n8n answered {client.send(prepared.event)}"


def n8n_event_handler(runtime: Runtime) -> Handler:
    client = runtime.n8n_client()
    return lambda job: _deliver(client, notify.prepare(
        runtime.sessions, runtime.config, job.payload, secret_key=runtime.settings.secret_key,
        now=runtime.clock(), issue_links=client is not None))


def default_handlers(runtime: Runtime) -> dict[str, Handler]:
    return {queue.CRM_SYNC: crm_sync_handler(runtime), queue.CRM_TAG: crm_tag_handler(runtime),
            queue.CRM_ERASE: crm_erase_handler(runtime), queue.PERSONA_REDACT: persona_redact_handler(runtime),
            queue.N8N_EVENT: n8n_event_handler(runtime)}


class Worker:
    def __init__(self, runtime: Runtime, handlers: dict[str, Handler] | None = None, *,
                 batch: int = 10, name: str | None = None, rng: random.Random | None = None,
                 concurrency: int | None = None, alive: Callable[[], None] | None = None,
                 upkeep: Upkeep | None = None):
        self.runtime = runtime
        # Called on every poll and before every job: `kyc-bridge healthcheck` reads it in a worker container.
        self.alive = alive or (lambda: None)
        self.upkeep = upkeep  # None: run_forever runs the [schedule] of the config
        self.handlers = handlers if handlers is not None else default_handlers(runtime)
        self.batch = batch
        self.concurrency = concurrency or runtime.config.concurrency
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.rng = rng or random.Random()
        config = runtime.config
        self.breakers = {sink: Breaker(sink, failures=config.breaker_failures,
                                       probe_seconds=config.breaker_probe_seconds)
                         for sink in sorted(set(SINK_OF_KIND.values()))}
        self._running: dict[int, queue.ClaimedJob] = {}  # job id → claimed job, while it runs here
        self._running_lock = threading.Lock()
        self._wake = threading.Event()  # a job finished, or NOTIFY said jobs were queued
        self.tick: Callable[[], float] = time.monotonic  # the breakers' clock
        self.listening = threading.Event()  # PostgreSQL: LISTEN is in place

    # ------------------------------------------------------------------ claiming

    def _kinds_of(self, sink: str) -> list[str]:
        return sorted(kind for kind, of in SINK_OF_KIND.items() if of == sink)

    def claim(self, limit: int) -> list[queue.ClaimedJob]:
        """Claim up to `limit` due jobs, none of a sink whose circuit is open, plus that sink's
        probe when its time has come."""
        config, now, tick = self.runtime.config, self.runtime.clock(), self.tick()
        closed_to = [kind for sink, breaker in self.breakers.items() if not breaker.admits(tick)
                     for kind in self._kinds_of(sink)]
        probing = [sink for sink, breaker in self.breakers.items() if breaker.take_probe(tick)]
        claimed: list[queue.ClaimedJob] = []
        with transaction(self.runtime.sessions) as session:
            for sink in probing:
                if len(claimed) < limit:
                    claimed += queue.claim(session, now=now, lease_seconds=config.lease_seconds, limit=1,
                                           only_kinds=self._kinds_of(sink), probe=True)
            if len(claimed) < limit:
                claimed += queue.claim(session, now=now, lease_seconds=config.lease_seconds,
                                       limit=limit - len(claimed), skip_kinds=closed_to)
        probed = {SINK_OF_KIND.get(job.kind) for job in claimed}
        for sink in probing:
            if sink not in probed:
                self.breakers[sink].probe_not_started(tick)
        return claimed

    def run_once(self) -> list[Outcome]:
        """Claim one batch and run it, one job after another; returns what happened to each job."""
        return [self._run(job) for job in self.claim(self.batch)]

    def drain(self, max_rounds: int = 1000) -> list[Outcome]:
        """Run until nothing is due (tests, demo)."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            batch = self.run_once()
            if not batch:
                break
            outcomes.extend(batch)
        return outcomes

    # ------------------------------------------------------------------ the service loop

    def wake(self) -> None:
        self._wake.set()

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker %s started (%d jobs at once)", self.name, self.concurrency)
        upkeep = self.upkeep if self.upkeep is not None else Upkeep(self.runtime)
        for line in upkeep.describe():
            log.info("%s", line)
        helpers = [threading.Thread(target=self._heartbeat_loop, args=(stop,), name="kyc-heartbeat", daemon=True)]
        if self.runtime.engine.dialect.name == "postgresql":
            helpers.append(threading.Thread(target=self._listen, args=(stop,), name="kyc-listen", daemon=True))
        for helper in helpers:
            helper.start()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="kyc-job") as pool:
            while not stop.is_set():
                self._wake.clear()
                self.alive()
                free = self.concurrency - self.running_count()
                jobs: list[queue.ClaimedJob] = []
                try:
                    upkeep.tick()  # between claims: scheduled upkeep runs in this loop, one task at a time
                    jobs = self.claim(free) if free > 0 else []
                except StoreUnavailable as exc:
                    log.warning("worker: store unavailable (%s); retrying", exc)
                except Exception:  # a bug must not kill the loop; the job's lease brings it back
                    log.exception("worker: unexpected error")
                for job in jobs:
                    self._track(job)
                    pool.submit(self._run_tracked, job)
                # Sleep until a job finishes (a slot is free), NOTIFY, or the poll interval.
                self._wake.wait(self.runtime.config.poll_interval_seconds)
        log.info("worker %s stopped", self.name)

    def running_count(self) -> int:
        with self._running_lock:
            return len(self._running)

    def _track(self, job: queue.ClaimedJob) -> None:
        with self._running_lock:
            self._running[job.id] = job

    def _run_tracked(self, job: queue.ClaimedJob) -> Outcome | None:
        try:
            return self._run(job)
        except Exception as exc:  # nobody reads the pool's futures: say it here; the lease brings the job back
            log.warning("job %s (%s): outcome not recorded (%s); it runs again when its lease ends",
                        job.id, job.kind, type(exc).__name__)
            return None
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)
            self._wake.set()

    def heartbeat(self) -> list[int]:
        """Renew the leases of the jobs still running here; returns the ids whose lease was lost."""
        with self._running_lock:
            running = list(self._running.values())
        lost = []
        for job in running:
            with transaction(self.runtime.sessions) as session:
                if not queue.renew(session, job, now=self.runtime.clock(),
                                   lease_seconds=self.runtime.config.lease_seconds):
                    lost.append(job.id)
        for job_id in lost:
            log.warning("job %s lost its lease while running; it will not write", job_id)
        return lost

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        # A third of the lease: two renewals may fail (a store hiccup) before the lease runs out.
        interval = max(0.2, self.runtime.config.lease_seconds / 3)
        while not stop.wait(interval):
            try:
                self.heartbeat()
            except Exception as exc:  # the next round tries again; the lease check guards the writes
                log.warning("worker: lease heartbeat failed (%s)", type(exc).__name__)

    def _listen(self, stop: threading.Event) -> None:
        """PostgreSQL: LISTEN for NOTIFY from transactions that queue jobs, and wake the loop."""
        import psycopg

        url = self.runtime.engine.url.set(drivername="postgresql")
        while not stop.is_set():
            try:
                with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
                    conn.execute(f"LISTEN {queue.JOBS_CHANNEL}")
                    self.listening.set()
                    self._wake.set()  # jobs queued while nobody listened
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._wake.set()
            except Exception as exc:  # polling goes on meanwhile
                self.listening.clear()
                log.warning("worker: LISTEN connection failed (%s); polling until it is back", type(exc).__name__)
                stop.wait(5)

    # ------------------------------------------------------------------ one job

    def _run(self, job: queue.ClaimedJob) -> Outcome:
        self.alive()
        handler = self.handlers.get(job.kind)
        sink = self.breakers.get(SINK_OF_KIND.get(job.kind, ""))
        try:
            if handler is None:
                raise SinkError(f"no handler for job kind {job.kind!r}", retryable=False)
            result = handler(job)
        except SinkError as exc:
            if sink is not None and exc.retryable:
                self._sink_changed(sink.failure(exc.reason, self.tick()))
            return self._failed(job, exc.reason, retryable=exc.retryable)
        except LeaseLost:
            return self._failed(job, "lease lost before a write", retryable=True)
        except StoreUnavailable:
            return self._failed(job, "store unavailable", retryable=True)
        except Exception as exc:  # unexpected: keep the type only, messages may carry personal data
            log.exception("job %s (%s) raised", job.id, job.kind)
            return self._failed(job, f"unexpected {type(exc).__name__}", retryable=True)
        if sink is not None:
            self._sink_changed(sink.success())
        return self._record(job, "done", result)

    def _sink_changed(self, change: Change | None) -> None:
        if change is None:
            return
        if change.opened:
            log.warning("%s is down: %d failures in a row, the last: %s. Its jobs wait; one probe every %ss",
                        change.sink, change.failures, change.reason, self.runtime.config.breaker_probe_seconds)
            return
        with transaction(self.runtime.sessions) as session:
            released = queue.make_due(session, self._kinds_of(change.sink), now=self.runtime.clock())
        log.info("%s is back; %d waiting job(s) made due now", change.sink, released)
        self._wake.set()

    def _failed(self, job: queue.ClaimedJob, reason: str, *, retryable: bool) -> Outcome:
        if retryable and job.attempts < job.max_attempts:
            return self._record(job, "retry", reason)
        if retryable:
            reason = f"{reason} (gave up after {job.attempts} attempts)"
        return self._record(job, "dead", reason)

    def _record(self, job: queue.ClaimedJob, outcome: str, detail: str | None) -> Outcome:
        """Record the outcome; a transient store error (a deadlock victim on MariaDB, a dropped
        connection) is tried again at once, since an unrecorded job stays `running` until its lease
        runs out and holds its person's key all that time."""
        for attempt in range(RECORD_TRIES):
            try:
                return self._record_once(job, outcome, detail)
            except StoreUnavailable:
                if attempt == RECORD_TRIES - 1:
                    raise
                time.sleep(0.05 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _record_once(self, job: queue.ClaimedJob, outcome: str, detail: str | None) -> Outcome:
        config, now = self.runtime.config, self.runtime.clock()
        with transaction(self.runtime.sessions) as session:
            if outcome == "done":
                held = queue.complete(session, job, now=now, result=detail)
            elif outcome == "retry":
                delay = backoff.delay_seconds(job.attempts, base=config.backoff_base_seconds,
                                              cap=config.backoff_max_seconds, rng=self.rng)
                held = queue.retry_later(session, job, now=now, run_after=now + timedelta(seconds=delay),
                                         error=detail or "")
            else:
                held = queue.bury(session, job, now=now, error=detail or "")
            if not held:
                outcome = "lost"  # our lease ran out and another worker took the job over
            else:
                audit.append(session, f"job.{outcome}", f"job:{job.id}", {
                    "job_id": job.id, "kind": job.kind, "inquiry_id": job.inquiry_id,
                    "attempt": job.attempts, "reason": None if outcome == "done" else detail,
                }, at=now)
        log.info("job %s %s attempt %s: %s%s", job.id, job.kind, job.attempts, outcome,
                 "" if outcome == "done" else f" ({detail})")
        return Outcome(job.id, job.kind, outcome, detail)


def start_in_thread(runtime: Runtime) -> tuple[threading.Thread, threading.Event]:
    """An in-process worker for `serve` and `demo`."""
    stop = threading.Event()
    thread = threading.Thread(target=Worker(runtime).run_forever, args=(stop,), name="kyc-worker", daemon=True)
    thread.start()
    return thread, stop
