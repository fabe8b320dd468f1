"""The outbox worker: claims due jobs with a lease, runs their handler, records the outcome.

At-least-once: a worker killed mid-job leaves the job `running` with a lease; once the lease runs
out another worker claims it again. Handlers are idempotent, so a re-run does no harm.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Callable

from bridge import audit
from bridge.outbox import backoff, crm_sync, notify
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


def _apply(client, target: crm_sync.Target | str) -> str:  # type: ignore[no-untyped-def]
    """Send a tag plan to FluentCRM, or describe it when FluentCRM is not configured."""
    if isinstance(target, str):
        return target
    if client is None:
        return f"dry run: would attach {_slugs(target.plan.attach)}; detach {_slugs(target.plan.detach)}"
    from bridge.sinks.fluentcrm import TagRef

    if target.remove_only:
        removed = client.remove_tags(target.email, [TagRef(t.slug, t.title) for t in target.plan.detach])
        return "contact not in FluentCRM: nothing to detach" if removed is None else \
            f"contact {removed.contact_id}: detached {_slugs(removed.detached)}"
    result = client.sync_contact_tags(
        target.email, target.first_name,
        [TagRef(t.slug, t.title) for t in target.plan.attach],
        [TagRef(t.slug, t.title) for t in target.plan.detach],
    )
    verb = "created contact" if result.created else "contact"
    return f"{verb} {result.contact_id}: attached {_slugs(result.attached)}; detached {_slugs(result.detached)}"


def crm_sync_handler(runtime: Runtime) -> Handler:
    client = runtime.crm_client()
    return lambda job: _apply(client, crm_sync.target(runtime.sessions, runtime.config, job.payload["inquiry_id"]))


def crm_tag_handler(runtime: Runtime) -> Handler:
    client = runtime.crm_client()
    return lambda job: _apply(client, crm_sync.manual_review_target(runtime.sessions, runtime.config,
                                                                      int(job.payload["contact_id"])))


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
            queue.PERSONA_REDACT: persona_redact_handler(runtime), queue.N8N_EVENT: n8n_event_handler(runtime)}


class Worker:
    def __init__(self, runtime: Runtime, handlers: dict[str, Handler] | None = None, *,
                 batch: int = 10, name: str | None = None, rng: random.Random | None = None):
        self.runtime = runtime
        self.handlers = handlers if handlers is not None else default_handlers(runtime)
        self.batch = batch
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.rng = rng or random.Random()

    def run_once(self) -> list[Outcome]:
        """Claim one batch and run it; returns what happened to each job."""
        config = self.runtime.config
        with transaction(self.runtime.sessions) as session:
            jobs = queue.claim(session, now=self.runtime.clock(), lease_seconds=config.lease_seconds,
                               limit=self.batch)
        return [self._run(job) for job in jobs]

    def drain(self, max_rounds: int = 1000) -> list[Outcome]:
        """Run until nothing is due (tests, demo)."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            batch = self.run_once()
            if not batch:
                break
            outcomes.extend(batch)
        return outcomes

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                did_work = bool(self.run_once())
            except StoreUnavailable as exc:
                log.warning("worker: store unavailable (%s); retrying", exc)
                did_work = False
            except Exception:  # a bug must not kill the loop; the job's lease brings it back
                log.exception("worker: unexpected error")
                did_work = False
            if not did_work:
                stop.wait(self.runtime.config.poll_interval_seconds)
        log.info("worker %s stopped", self.name)

    def _run(self, job: queue.ClaimedJob) -> Outcome:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise SinkError(f"no handler for job kind {job.kind!r}", retryable=False)
            result = handler(job)
        except SinkError as exc:
            return self._failed(job, exc.reason, retryable=exc.retryable)
        except StoreUnavailable:
            return self._failed(job, "store unavailable", retryable=True)
        except Exception as exc:  # unexpected: keep the type only, messages may carry personal data
            log.exception("job %s (%s) raised", job.id, job.kind)
            return self._failed(job, f"unexpected {type(exc).__name__}", retryable=True)
        return self._record(job, "done", result)

    def _failed(self, job: queue.ClaimedJob, reason: str, *, retryable: bool) -> Outcome:
        if retryable and job.attempts < job.max_attempts:
            return self._record(job, "retry", reason)
        if retryable:
            reason = f"{reason} (gave up after {job.attempts} attempts)"
        return self._record(job, "dead", reason)

    def _record(self, job: queue.ClaimedJob, outcome: str, detail: str | None) -> Outcome:
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
        log.info("job %s %s attempt %s: %s", job.id, job.kind, job.attempts, outcome)
        return Outcome(job.id, job.kind, outcome, detail)


def start_in_thread(runtime: Runtime) -> tuple[threading.Thread, threading.Event]:
    """An in-process worker for `serve` and `demo`."""
    stop = threading.Event()
    thread = threading.Thread(target=Worker(runtime).run_forever, args=(stop,), name="kyc-worker", daemon=True)
    thread.start()
    return thread, stop
