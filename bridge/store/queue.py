"""Outbox queries: enqueue in the caller's transaction, claim with a lease, record outcomes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from bridge.store.driver_sql import DriverStatement, ListStatement, in_list
from bridge.store.models import Job

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
# The job kinds, one place for all: who enqueues a kind and who runs it import it from here.
CRM_SYNC = "crm.sync"  # an inquiry's status tags to FluentCRM (queued by intake)
CRM_TAG = "crm.tag"  # one tag for a person without an inquiry, e.g. manual review (onboarding)
PERSONA_REDACT = "persona.redact"  # ask Persona to redact an erased person's inquiry (privacy)
N8N_EVENT = "n8n.event"  # a thin KYC event for n8n (intake, remind, links)
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


def job_row(kind: str, *, inquiry_id: str | None, payload: dict[str, Any], max_attempts: int,
            now: datetime) -> dict[str, Any]:
    """The column values of a new queued job."""
    return {"kind": kind, "inquiry_id": inquiry_id, "payload": _encode(payload), "state": QUEUED, "attempts": 0,
            "max_attempts": max_attempts, "run_after": now, "created_at": now, "updated_at": now}


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
    max_attempts: int, now: datetime, coalesce: bool = False,
) -> bool:
    """Add a job in the caller's transaction. `coalesce`: skip when an identical job is still
    queued (it will read the newest state when it runs). Returns whether a job was added."""
    row = job_row(kind, inquiry_id=inquiry_id, payload=payload, max_attempts=max_attempts, now=now)
    connection = session.connection()
    if coalesce and connection.execute(_WAITING_SAME[inquiry_id is None], row).first() is not None:
        return False
    connection.execute(_INSERT, row)
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


def claim(session: Session, *, now: datetime, lease_seconds: int, limit: int) -> list[ClaimedJob]:
    """Take up to `limit` due jobs: queued ones whose time has come, and running ones whose lease
    ran out (their worker died). SKIP LOCKED keeps concurrent workers off each other's rows on
    PostgreSQL and MariaDB; SQLite's BEGIN IMMEDIATE serialises claimers instead."""
    due = or_(
        (Job.state == QUEUED) & (Job.run_after <= now),
        (Job.state == RUNNING) & (Job.lease_until < now),
    )
    rows = session.scalars(
        select(Job).where(due).order_by(Job.run_after, Job.id).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for job in rows:
        job.state = RUNNING
        job.attempts += 1
        job.lease_token = secrets.token_hex(16)
        job.lease_until = now + timedelta(seconds=lease_seconds)
        job.updated_at = now
        claimed.append(ClaimedJob(job.id, job.kind, job.inquiry_id, json.loads(job.payload or "{}"),
                                  job.attempts, job.max_attempts, job.lease_token))
    return claimed


def _finish(session: Session, job: ClaimedJob, now: datetime, **values: Any) -> bool:
    """Update the job only if we still hold its lease (else another worker re-ran it)."""
    result = session.execute(
        update(Job).where(Job.id == job.id, Job.lease_token == job.lease_token, Job.state == RUNNING)
        .values(lease_token=None, lease_until=None, updated_at=now, **values)
    )
    return result.rowcount == 1


def complete(session: Session, job: ClaimedJob, *, now: datetime, result: str | None) -> bool:
    return _finish(session, job, now, state=DONE, result=result, last_error=None)


def retry_later(session: Session, job: ClaimedJob, *, now: datetime, run_after: datetime, error: str) -> bool:
    return _finish(session, job, now, state=QUEUED, run_after=run_after, last_error=error)


def bury(session: Session, job: ClaimedJob, *, now: datetime, error: str) -> bool:
    return _finish(session, job, now, state=DEAD, last_error=error)


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
    set to this integer, e.g. the contact of a link or tag job, which carry no inquiry id."""
    pair = json.dumps({key: value}, separators=(",", ":"))[1:-1].replace("_", "!_")
    return Job.payload.like(f"%{pair},%", escape="!") | Job.payload.like(f"%{pair}}}%", escape="!")
