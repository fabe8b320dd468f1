"""Outbox queries: enqueue in the caller's transaction, claim with a lease, record outcomes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, or_, select, true, update
from sqlalchemy.orm import Session

from bridge.store.driver_sql import DriverStatement, ListStatement, in_list
from bridge.store.models import ContactLease, Job

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
# The job kinds, one place for all: who enqueues a kind and who runs it import it from here.
CRM_SYNC = "crm.sync"  # an inquiry's status tags to FluentCRM (queued by intake)
CRM_TAG = "crm.tag"  # one tag for a person without an inquiry, e.g. manual review (onboarding)
PERSONA_REDACT = "persona.redact"  # ask Persona to redact an erased person's inquiry (privacy)
N8N_EVENT = "n8n.event"  # a thin KYC event for n8n (intake, remind, links)
# An erased person's KYC tags off their FluentCRM contact (privacy). The store has forgotten the
# email, so the job carries it, and only until it has run: see PERSONAL_PAYLOAD_KEYS.
CRM_ERASE = "crm.erase"
# Payload keys holding personal data, per kind: dropped from the payload when the job is done or
# dead (`_finish`), and by the retention purge from any finished job that still has them.
PERSONAL_PAYLOAD_KEYS: dict[str, tuple[str, ...]] = {CRM_ERASE: ("email",)}
FAILED = "failed"  # not stored: a queued job waiting for its retry after an error


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    inquiry_id: str | None
    payload: dict[str, Any]
    attempts: int  # including this one
    max_attempts: int
    lease_token: str
    contact_key: str | None = None  # the person whose FluentCRM contact it writes (one job per key at a time)


def contact_key(contact_id: int | None, inquiry_id: str | None) -> str | None:
    """The person a FluentCRM job writes: their contact, or the inquiry while it has no contact yet."""
    if contact_id is not None:
        return f"contact:{contact_id}"
    return f"inquiry:{inquiry_id}" if inquiry_id else None


def job_row(kind: str, *, inquiry_id: str | None, payload: dict[str, Any], max_attempts: int,
            now: datetime, contact_key: str | None = None) -> dict[str, Any]:
    """The column values of a new queued job."""
    return {"kind": kind, "inquiry_id": inquiry_id, "payload": _encode(payload), "state": QUEUED, "attempts": 0,
            "max_attempts": max_attempts, "run_after": now, "created_at": now, "updated_at": now,
            "contact_key": contact_key}


def _encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


_jobs = Job.__table__
_NOT_STARTED = (_jobs.c.state == QUEUED) & (_jobs.c.attempts == 0)
_SAME_WORK = select(_jobs.c.id).where(_jobs.c.kind == bindparam("kind"), _jobs.c.payload == bindparam("payload"),
                                      _NOT_STARTED).limit(1)
# `= NULL` matches nothing, and IS NOT DISTINCT FROM cannot use PostgreSQL's index: one statement each.
_WAITING_SAME = {True: _SAME_WORK.where(_jobs.c.inquiry_id.is_(None)),
                 False: _SAME_WORK.where(_jobs.c.inquiry_id == bindparam("inquiry_id"))}
_INSERT = insert(_jobs)


def enqueue(
    session: Session, kind: str, *, inquiry_id: str | None, payload: dict[str, Any],
    max_attempts: int, now: datetime, coalesce: bool = False, contact_key: str | None = None,
) -> bool:
    """Add a job in the caller's transaction. `coalesce`: skip when an identical job is still
    queued (it will read the newest state when it runs). `contact_key`: the person whose FluentCRM
    contact the job writes (see `claim`). Returns whether a job was added."""
    row = job_row(kind, inquiry_id=inquiry_id, payload=payload, max_attempts=max_attempts, now=now,
                  contact_key=contact_key)
    connection = session.connection()
    if coalesce and connection.execute(_WAITING_SAME[inquiry_id is None], row).first() is not None:
        return False
    connection.execute(_INSERT, row)
    wake_workers(connection)
    return True


_JOBS_OF_INQUIRIES = ListStatement(lambda n: select(_jobs.c.inquiry_id, _jobs.c.state, _jobs.c.attempts).where(
    _jobs.c.kind == bindparam("kind"), _jobs.c.inquiry_id.in_(in_list("ids", n))))
_ADD = DriverStatement(_INSERT)


def send_not_started_for(connection: Connection, kind: str, inquiry_ids: Sequence[str]) -> Callable[[], set[str]]:
    """Which of these inquiries have a job of `kind` queued and not tried yet (the `_NOT_STARTED`
    rule, applied here), asked inside a `driver_sql.pipelined` block: call the result after it.
    The query names no state on purpose: with a state condition PostgreSQL, whose statistics lag
    a fast-growing queue, reads every queued job through the due-jobs index instead of looking up
    these inquiries (ms per call, growing with the backlog)."""
    if not inquiry_ids:
        return set
    pending = _JOBS_OF_INQUIRIES.send(connection, {"kind": kind}, {"ids": inquiry_ids})
    return lambda: {row["inquiry_id"] for row in pending.all() if row["state"] == QUEUED and row["attempts"] == 0}


def add_many(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert `job_row`s in the caller's transaction, in one statement."""
    if rows:
        _ADD.run(connection, rows)


JOBS_CHANNEL = "kyc_jobs"


def wake_workers(connection: Connection) -> None:
    """On PostgreSQL, tell listening workers (LISTEN kyc_jobs) that jobs were queued. NOTIFY is sent
    at commit, and only then: a worker never wakes for a job it cannot see yet."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"NOTIFY {JOBS_CHANNEL}")


_leases = ContactLease.__table__


def claim(session: Session, *, now: datetime, lease_seconds: int, limit: int,
          skip_kinds: Sequence[str] = (), only_kinds: Sequence[str] | None = None,
          probe: bool = False) -> list[ClaimedJob]:
    """Take up to `limit` due jobs: queued ones whose time has come, and running ones whose lease
    ran out (their worker died). SKIP LOCKED keeps concurrent workers off each other's rows on
    PostgreSQL and MariaDB; SQLite's BEGIN IMMEDIATE serialises claimers instead.

    A job with a contact key also needs the key's lease (kyc_contact_leases): jobs whose key another
    job holds are not picked, and the key is taken with a conditional UPDATE (free or expired →
    ours), which the store runs one at a time per row, so of two workers racing for one person's
    jobs exactly one gets the key; the other leaves its job queued. Keys are taken in sorted
    order, so two claimers never wait on each other in a circle. `skip_kinds`: kinds not to take
    now (their sink's circuit is open); `only_kinds`: just these; `probe`: queued jobs count as due
    even while they wait out their backoff (the one job that tests whether a sink is back)."""
    key_busy = exists().where(_leases.c.contact_key == Job.contact_key, _leases.c.lease_until >= now)
    due = or_(
        (Job.state == QUEUED) & (true() if probe else Job.run_after <= now),
        (Job.state == RUNNING) & (Job.lease_until < now),
    )
    query = select(Job).where(due, ~key_busy)
    if skip_kinds:
        query = query.where(Job.kind.not_in(list(skip_kinds)))
    if only_kinds is not None:
        query = query.where(Job.kind.in_(list(only_kinds)))
    rows = session.scalars(query.order_by(Job.run_after, Job.id).limit(limit).with_for_update(skip_locked=True)).all()
    until = now + timedelta(seconds=lease_seconds)
    first_of_key: dict[str, Job] = {}
    for job in rows:
        if job.contact_key:
            first_of_key.setdefault(job.contact_key, job)
    tokens = {job.id: secrets.token_hex(16) for job in rows}
    won = _take_keys(session, {key: (job.id, tokens[job.id]) for key, job in first_of_key.items()}, now, until)
    claimed = []
    for job in rows:
        if job.contact_key and (first_of_key[job.contact_key] is not job or job.contact_key not in won):
            continue  # another job of this person runs (or is being claimed elsewhere): it waits
        job.state = RUNNING
        job.attempts += 1
        job.lease_token = tokens[job.id]
        job.lease_until = until
        job.updated_at = now
        claimed.append(ClaimedJob(job.id, job.kind, job.inquiry_id, json.loads(job.payload or "{}"),
                                  job.attempts, job.max_attempts, job.lease_token, job.contact_key))
    return claimed


def _insert_missing(session: Session) -> Any:
    """INSERT that leaves an existing key row alone, in each dialect's words."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_leases).on_conflict_do_nothing()
    if dialect == "sqlite":
        return insert(_leases).prefix_with("OR IGNORE")
    return insert(_leases).prefix_with("IGNORE")


_TAKE_KEY = (update(_leases).where(_leases.c.contact_key == bindparam("key"),
                                   or_(_leases.c.lease_until.is_(None), _leases.c.lease_until < bindparam("now")))
             .values(job_id=bindparam("job_id"), lease_token=bindparam("token"), lease_until=bindparam("until")))


def _take_keys(session: Session, wanted: dict[str, tuple[int, str]], now: datetime, until: datetime) -> set[str]:
    """Take each free key's lease for its job; returns the keys taken."""
    if not wanted:
        return set()
    keys = sorted(wanted)
    present = set(session.scalars(select(_leases.c.contact_key).where(_leases.c.contact_key.in_(keys))))
    missing = [{"contact_key": key} for key in keys if key not in present]
    if missing:
        session.execute(_insert_missing(session), missing)
    won = set()
    for key in keys:
        job_id, token = wanted[key]
        result = session.connection().execute(_TAKE_KEY, {"key": key, "now": now, "job_id": job_id,
                                                          "token": token, "until": until})
        if result.rowcount == 1:
            won.add(key)
    return won


def _release_key(session: Session, job: ClaimedJob) -> None:
    if job.contact_key:
        session.execute(update(_leases).where(_leases.c.contact_key == job.contact_key,
                                              _leases.c.lease_token == job.lease_token)
                        .values(job_id=None, lease_token=None, lease_until=None))


def renew(session: Session, job: ClaimedJob, *, now: datetime, lease_seconds: int) -> bool:
    """Heartbeat: extend a running job's lease (and its key's) while its worker is still busy with
    it. False when the lease was lost: another worker took the job, or another job the key."""
    until = now + timedelta(seconds=lease_seconds)
    if job.contact_key:
        key = session.execute(update(_leases).where(_leases.c.contact_key == job.contact_key,
                                                    _leases.c.lease_token == job.lease_token)
                              .values(lease_until=until))
        if key.rowcount != 1:
            return False
    result = session.execute(update(Job).where(Job.id == job.id, Job.lease_token == job.lease_token,
                                               Job.state == RUNNING).values(lease_until=until))
    return result.rowcount == 1


def holds_lease(session: Session, job: ClaimedJob, *, now: datetime) -> bool:
    """Whether `job`'s worker may still act for it: its lease (and its key's) is ours and unexpired.
    Asked before each external write: a worker that lost its lease must not write."""
    held = select(Job.id).where(Job.id == job.id, Job.lease_token == job.lease_token, Job.state == RUNNING,
                                Job.lease_until > now)
    if job.contact_key:
        held = held.where(exists().where(_leases.c.contact_key == job.contact_key,
                                         _leases.c.lease_token == job.lease_token))
    return session.execute(held).first() is not None


def _finish(session: Session, job: ClaimedJob, now: datetime, **values: Any) -> bool:
    """Update the job only if we still hold its lease (else another worker re-ran it); frees its key."""
    result = session.execute(
        update(Job).where(Job.id == job.id, Job.lease_token == job.lease_token, Job.state == RUNNING)
        .values(lease_token=None, lease_until=None, updated_at=now, **values)
    )
    if result.rowcount != 1:
        return False
    _release_key(session, job)
    return True


def _without_personal_data(job: ClaimedJob) -> dict[str, Any]:
    """The payload column of a finished job: its personal keys gone (nothing, for most kinds)."""
    keys = PERSONAL_PAYLOAD_KEYS.get(job.kind, ())
    if not any(key in job.payload for key in keys):
        return {}
    return {"payload": _encode({k: v for k, v in job.payload.items() if k not in keys})}


def complete(session: Session, job: ClaimedJob, *, now: datetime, result: str | None) -> bool:
    return _finish(session, job, now, state=DONE, result=result, last_error=None, **_without_personal_data(job))


def retry_later(session: Session, job: ClaimedJob, *, now: datetime, run_after: datetime, error: str) -> bool:
    return _finish(session, job, now, state=QUEUED, run_after=run_after, last_error=error)


def bury(session: Session, job: ClaimedJob, *, now: datetime, error: str) -> bool:
    return _finish(session, job, now, state=DEAD, last_error=error, **_without_personal_data(job))


def clear_finished_personal_data(session: Session) -> int:
    """Drop the personal payload keys of done and dead jobs that still hold them (the retention
    purge's part; `complete` and `bury` drop them already). Returns how many jobs were cleared."""
    cleared = 0
    for kind, keys in PERSONAL_PAYLOAD_KEYS.items():
        jobs = session.scalars(select(Job).where(Job.kind == kind, Job.state.in_((DONE, DEAD)))
                               .with_for_update()).all()
        for job in jobs:
            payload = json.loads(job.payload or "{}")
            if any(key in payload for key in keys):
                job.payload = _encode({k: v for k, v in payload.items() if k not in keys})
                cleared += 1
    return cleared


def requeue(session: Session, job_ids: list[int] | None, *, now: datetime) -> list[int]:
    """Make dead jobs, and failed ones waiting for their next try, due now (all, or the given ids);
    dead jobs get a fresh attempt budget."""
    waiting_retry = (Job.state == QUEUED) & Job.last_error.is_not(None)
    query = select(Job).where((Job.state == DEAD) | waiting_retry)
    if job_ids:
        query = query.where(Job.id.in_(job_ids))
    jobs = session.scalars(query.with_for_update()).all()
    for job in jobs:
        if job.state == DEAD:
            job.attempts = 0
        job.state, job.run_after, job.updated_at = QUEUED, now, now
    return [job.id for job in jobs]


def make_due(session: Session, kinds: Sequence[str], *, now: datetime) -> int:
    """A sink is back: its queued jobs, waiting out their backoff, become due now. Returns how many."""
    result = session.execute(update(Job).where(Job.state == QUEUED, Job.kind.in_(list(kinds)), Job.run_after > now)
                             .values(run_after=now))
    return result.rowcount


def list_jobs(session: Session, states: list[str] | None, limit: int) -> list[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if states:
        stored = [s for s in states if s != FAILED]
        condition = Job.state.in_(stored)
        if FAILED in states:
            condition = condition | ((Job.state == QUEUED) & Job.last_error.is_not(None))
        query = query.where(condition)
    return list(session.scalars(query).all())


def payload_holds(key: str, value: int) -> Any:
    """SQL condition: the job's payload (as `_encode` writes it: sorted keys, no spaces) has `key`
    set to this integer, e.g. the contact of a link event, which carries no inquiry id and no
    contact key (jobs that write a contact are found by `contact_key` instead)."""
    pair = json.dumps({key: value}, separators=(",", ":"))[1:-1].replace("_", "!_")
    return Job.payload.like(f"%{pair},%", escape="!") | Job.payload.like(f"%{pair}}}%", escape="!")
