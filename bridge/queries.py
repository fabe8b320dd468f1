"""Admin reads: stored inquiry state for the API. Answers only what is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from bridge.consent.onboarding import kyc_status
from bridge.outbox import review_sla
from bridge.outbox.crm_sync import SKIPPED_PREFIX
from bridge.kyc import renewal, review, standing
from bridge.kyc.states import status_of_event
from bridge.kyc.timestamps import iso_utc
from bridge.store import queue
from bridge.store.models import AuditEntry, Consent, Contact, Event, Inquiry, Job, Reminder


@dataclass(frozen=True)
class InquiryView:
    inquiry_id: str
    status: str
    user_type: str
    level: str | None
    email: str | None
    first_name: str | None
    template_id: str | None
    reference_id: str | None
    decided_at: datetime | None
    decided_by: str | None
    redacted_at: datetime | None
    updated_at: datetime
    crm_sync: str  # none | pending | done | skipped | dead
    crm_sync_error: str | None
    waiting_hours: float | None = None  # needs_review only: hours since the case entered review
    overdue: bool = False  # waited longer than its level's review target ([review] target_hours)
    review_target_hours: int | None = None  # needs_review only: that target

    def as_json(self) -> dict[str, object]:
        return {
            "inquiry_id": self.inquiry_id, "status": self.status, "user_type": self.user_type,
            "level": self.level, "email": self.email, "first_name": self.first_name,
            "template_id": self.template_id,
            "reference_id": self.reference_id, "decided_at": iso_utc(self.decided_at),
            "decided_by_event": self.decided_by, "redacted_at": iso_utc(self.redacted_at),
            "updated_at": iso_utc(self.updated_at), "crm_sync": self.crm_sync,
            "crm_sync_error": self.crm_sync_error, "waiting_hours": self.waiting_hours,
            "overdue": self.overdue, "review_target_hours": self.review_target_hours,
        }


@dataclass(frozen=True)
class Page:
    items: list[InquiryView]
    total: int
    page: int
    per_page: int


def _sync_states(session: Session, inquiry_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    if not inquiry_ids:
        return {}
    latest = (
        select(Job.inquiry_id, func.max(Job.id).label("job_id"))
        .where(Job.kind == queue.CRM_SYNC, Job.inquiry_id.in_(inquiry_ids)).group_by(Job.inquiry_id).subquery()
    )
    rows = session.execute(select(Job).join(latest, Job.id == latest.c.job_id)).scalars().all()
    states: dict[str, tuple[str, str | None]] = {}
    for job in rows:
        if job.state == "done":
            state = "skipped" if (job.result or "").startswith(SKIPPED_PREFIX) else "done"
        elif job.state == "dead":
            state = "dead"
        else:
            state = "pending"
        states[job.inquiry_id or ""] = (state, job.last_error if job.state != "done" else None)
    return states


DECIDED_OR_SUBMITTED = ("completed", "needs_review", "approved", "declined")
DECISIONS = ("approved", "declined")
NEEDS_REVIEW = review.NEEDS_REVIEW
REVIEW_QUEUE_LIMIT = 50  # stats' review queue: the longest waiting cases only
MEDIAN_SAMPLE = 1000  # the median time to a decision looks at the newest decisions only
# A review case waits since the event that put it into review, or the monitoring match that did.
_WAITING_SINCE = review_sla.WAITING_SINCE


def _views(session: Session, rows: list[tuple[Inquiry, str | None, str | None]], now: datetime | None,
           targets: Mapping[str, int], lapse: renewal.Policy | None) -> list[InquiryView]:
    syncs = _sync_states(session, [inquiry.inquiry_id for inquiry, _, _ in rows])
    views = []
    for inquiry, email, first_name in rows:
        target = review.target_hours(targets, inquiry.level)
        status = standing.status_shown(inquiry, lapse)  # what the gate says: held in review, or lapsed
        since = review.case_since(inquiry, lapse)
        hours, overdue = review.waiting(status, since, now, target) if now else (None, False)
        views.append(InquiryView(
            inquiry.inquiry_id, status, inquiry.user_type, inquiry.level, email, first_name,
            inquiry.template_id, inquiry.reference_id, inquiry.decided_at, inquiry.decided_by,
            inquiry.redacted_at, inquiry.updated_at,
            *syncs.get(inquiry.inquiry_id, ("none", None)), waiting_hours=hours, overdue=overdue,
            review_target_hours=target if status == NEEDS_REVIEW else None,
        ))
    return views


# What `sort` may name (`waiting` = time in review, `status` = the status the gate says).
SORTS = ("updated_at", "decided_at", "status", "user_type", "level", "email", "name", "waiting")


def _sort_columns(shown_status):  # type: ignore[no-untyped-def]
    """The column each of SORTS orders by, with the shown status of the list's moment."""
    return {"updated_at": Inquiry.updated_at, "decided_at": Inquiry.decided_at, "status": shown_status,
            "user_type": Inquiry.user_type, "level": Inquiry.level, "email": Contact.email,
            "name": Contact.first_name, "waiting": _WAITING_SINCE}


@dataclass(frozen=True)
class InquiryFilter:
    status: str | None = None
    user_type: str | None = None
    level: str | None = None
    email: str | None = None  # exact (normalised)
    search: str | None = None  # part of an email or first name, any case
    sort: str = "updated_at"
    descending: bool = True
    overdue_first: bool = False  # review cases past the target first, longest waiting first


def _ordered(column, descending: bool):  # type: ignore[no-untyped-def]
    """Order by `column` with NULLs last on every backend (they disagree by default)."""
    return [case((column.is_(None), 1), else_=0), column.desc() if descending else column.asc()]


def list_inquiries(session: Session, *, page: int, per_page: int, now: datetime, targets: Mapping[str, int],
                   where: InquiryFilter = InquiryFilter(), lapse: renewal.Policy | None = None) -> Page:
    """A page of inquiries; `status` (filter and sort) is the one the gate says (`lapse`: renewals)."""
    shown = review_sla.shown_status(lapse)
    query = select(Inquiry, Contact.email, Contact.first_name).outerjoin(Contact, Contact.id == Inquiry.contact_id)
    if where.status:
        query = query.where(shown == where.status)
    if where.user_type:
        query = query.where(Inquiry.user_type == where.user_type)
    if where.level:
        query = query.where(Inquiry.level == where.level)
    if where.email:
        query = query.where(Contact.email == where.email)
    if where.search:
        # "!" escapes LIKE's wildcards: a backslash would need its own escaping on MySQL.
        term = where.search.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
        pattern = f"%{term}%"
        query = query.where(Contact.email.like(pattern, escape="!") | func.lower(Contact.first_name).like(pattern, escape="!"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = []
    if where.overdue_first:
        overdue = review_sla.overdue(targets, now, lapse)
        order += [case((overdue, 0), else_=1), case((overdue, _WAITING_SINCE), else_=None).asc()]
    order += _ordered(_sort_columns(shown)[where.sort], where.descending)
    order.append(Inquiry.id.desc() if where.descending else Inquiry.id.asc())
    rows = session.execute(query.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    return Page(_views(session, [(r[0], r[1], r[2]) for r in rows], now, targets, lapse), total, page, per_page)


def get_inquiry(session: Session, inquiry_id: str, now: datetime | None, *,
                targets: Mapping[str, int], lapse: renewal.Policy | None = None) -> InquiryView | None:
    row = session.execute(
        select(Inquiry, Contact.email, Contact.first_name).outerjoin(Contact, Contact.id == Inquiry.contact_id)
        .where(Inquiry.inquiry_id == inquiry_id)
    ).first()
    return _views(session, [(row[0], row[1], row[2])], now, targets, lapse)[0] if row else None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def funnel(session: Session) -> dict[str, object]:
    """The funnel on people, each step a subset of the one before: consented → started (consented
    and has an inquiry) → completed (submitted or decided) → approved. People known only from a
    webhook (no consent recorded here) are counted beside it, not in it."""
    def with_inquiry(*statuses: str):  # type: ignore[no-untyped-def]
        query = select(Inquiry.id).where(Inquiry.contact_id == Consent.contact_id)
        return exists(query.where(Inquiry.status.in_(statuses)) if statuses else query)

    def consented(*conditions) -> int:  # type: ignore[no-untyped-def]
        return session.scalar(select(func.count(func.distinct(Consent.contact_id))).where(*conditions)) or 0

    steps = {"consented": consented(), "started": consented(with_inquiry()),
             "completed": consented(with_inquiry(*DECIDED_OR_SUBMITTED)), "approved": consented(with_inquiry("approved"))}
    has_consent = exists(select(Consent.id).where(Consent.contact_id == Inquiry.contact_id))
    person = func.coalesce(Inquiry.contact_id, -Inquiry.id)  # an inquiry without a contact is one person
    without_consent = session.scalar(select(func.count(func.distinct(person))).where(~has_consent)) or 0
    names = list(steps)
    conversion = {name: _percent(steps[name], steps[names[i - 1]]) for i, name in enumerate(names) if i}
    return {**steps, "without_consent": without_consent, "conversion": conversion,
            "overall": _percent(steps["approved"], steps["consented"])}


def median_hours_to_decision(session: Session) -> float | None:
    """Median hours from an inquiry's first event to its approval or decline (both Persona's times),
    over the newest MEDIAN_SAMPLE decisions; an inquiry first seen with its decision does not count."""
    first_event = (select(func.min(Event.created_at)).where(Event.inquiry_id == Inquiry.inquiry_id)
                   .correlate(Inquiry).scalar_subquery())
    rows = session.execute(
        select(first_event, Inquiry.decided_at)
        .where(Inquiry.status.in_(DECISIONS), Inquiry.decided_at.is_not(None))
        .order_by(Inquiry.decided_at.desc()).limit(MEDIAN_SAMPLE)
    ).all()
    hours = [(decided - first).total_seconds() / 3600 for first, decided in rows if first is not None and decided > first]
    return round(median(hours), 2) if hours else None


def review_counts(session: Session, *, now: datetime, targets: Mapping[str, int],
                  lapse: renewal.Policy | None = None) -> dict[str | None, tuple[int, int]]:
    """Per level (None: unknown): (cases waiting in review, of which overdue). For stats and /metrics."""
    overdue = review_sla.overdue(targets, now, lapse)
    rows = session.execute(
        select(Inquiry.level, func.count(), func.sum(case((overdue, 1), else_=0)))
        .where(review_sla.in_review(lapse)).group_by(Inquiry.level)).all()
    return {level: (int(total), int(late or 0)) for level, total, late in rows}


def status_counts(session: Session, lapse: renewal.Policy | None = None) -> dict[str, int]:
    """Inquiries per status, the status the gate says (held in review by a match, or lapsed)."""
    shown = review_sla.shown_status(lapse)
    return dict(session.execute(select(shown, func.count()).group_by(shown)).all())


def stats(session: Session, *, now: datetime, targets: Mapping[str, int],
          lapse: renewal.Policy | None = None) -> dict[str, object]:
    """Counts per status (the status the gate says), the funnel, and the review queue with waiting
    times against each level's target (`review_targets`, which the WordPress admin page shows)."""
    counts = status_counts(session, lapse)
    per_level = review_counts(session, now=now, targets=targets, lapse=lapse)
    review_total = sum(total for total, _ in per_level.values())
    review_overdue = sum(late for _, late in per_level.values())
    # The longest waiting only: the full queue is paged through GET /api/v1/inquiries?status=needs_review.
    queue_rows = session.scalars(
        select(Inquiry).where(review_sla.in_review(lapse))
        .order_by(*_ordered(_WAITING_SINCE, False), Inquiry.id).limit(REVIEW_QUEUE_LIMIT)
    ).all()
    review_queue = []
    for inquiry in queue_rows:
        since = review.case_since(inquiry, lapse)
        target = review.target_hours(targets, inquiry.level)
        hours, overdue = review.waiting(NEEDS_REVIEW, since, now, target)
        review_queue.append({
            "inquiry_id": inquiry.inquiry_id, "user_type": inquiry.user_type, "level": inquiry.level,
            "waiting_since": iso_utc(since), "waiting_hours": hours, "overdue": overdue,
            "review_target_hours": target,
        })
    return {
        "counts": counts,
        "funnel": funnel(session),
        "median_hours_to_decision": median_hours_to_decision(session),
        "review_queue": review_queue,
        "review_total": review_total,
        "review_overdue": review_overdue,
        # Per level; `review_target_hours` (one number, as before) is the enhanced level's, whose
        # cases are the ones that wait for a manual review.
        "review_targets": dict(targets),
        "review_target_hours": review.target_hours(targets, "enhanced"),
        "review_overdue_by_level": {level or "unknown": late for level, (_, late) in sorted(
            per_level.items(), key=lambda item: item[0] or "")},
    }


# --- one person: what the admin's detail view shows ---------------------------------------------


def contact_by_email(session: Session, email: str) -> Contact | None:
    return session.scalars(select(Contact).where(Contact.email == email)).one_or_none()


def contact_jobs(session: Session, contact: Contact, inquiry_ids: list[str]) -> list[Job]:
    """The outbox jobs about a person, each branch on an index: those of their inquiries (by inquiry
    id); those that write their FluentCRM contact (by contact key: tag jobs, syncs); and their link
    and reminder events, which carry neither. An n8n event writes no FluentCRM contact, so it has no
    key (a key would queue the email behind the person's CRM writes); those are found among the n8n
    events without an inquiry (the (inquiry_id, kind) index prefix) by the contact or reminder id in
    their payload."""
    about_contact = queue.payload_holds("contact_id", contact.id)
    for reminder_id in session.scalars(select(Reminder.id).where(Reminder.contact_id == contact.id)):
        about_contact = about_contact | queue.payload_holds("reminder_id", reminder_id)
    condition = (Job.contact_key == queue.contact_key(contact.id, None)) | (
        Job.inquiry_id.is_(None) & (Job.kind == queue.N8N_EVENT) & about_contact)
    if inquiry_ids:
        condition = condition | Job.inquiry_id.in_(inquiry_ids)
    return list(session.scalars(select(Job).where(condition).order_by(Job.id.desc()).limit(JOBS_SHOWN)))


JOBS_SHOWN = 100  # newest first; a person has a handful


def job_state(job: Job) -> str:
    """queued | running | done | skipped | failed (waiting for a retry) | dead."""
    if job.state == queue.DONE:
        return "skipped" if (job.result or "").startswith(SKIPPED_PREFIX) else "done"
    if job.state == queue.QUEUED and job.last_error:
        return queue.FAILED
    return job.state


def _job_json(job: Job) -> dict[str, object]:
    event_type = json.loads(job.payload or "{}").get("type") if job.kind == queue.N8N_EVENT else None
    return {"id": job.id, "kind": job.kind, "event_type": event_type, "inquiry_id": job.inquiry_id,
            "state": job_state(job), "attempts": job.attempts, "max_attempts": job.max_attempts,
            "last_error": job.last_error, "result": job.result, "created_at": iso_utc(job.created_at),
            "updated_at": iso_utc(job.updated_at)}


def contact_detail(session: Session, email: str, *, now: datetime,
                   targets: Mapping[str, int], lapse: renewal.Policy | None = None) -> dict[str, object] | None:
    """A person's KYC standing (approvals past their renewal deadline under `lapse` are expired),
    consents, inquiries with their status history (overdue against `targets`, hours per level), and
    the CRM sync and n8n jobs about them with their errors; None for an unknown email."""
    contact = contact_by_email(session, email)
    if contact is None:
        return None
    inquiries = session.scalars(select(Inquiry).where(Inquiry.contact_id == contact.id).order_by(Inquiry.id)).all()
    inquiry_ids = [i.inquiry_id for i in inquiries]
    views = _views(session, [(i, contact.email, contact.first_name) for i in inquiries], now, targets, lapse)
    events: dict[str, list[dict[str, object]]] = {inquiry_id: [] for inquiry_id in inquiry_ids}
    if inquiry_ids:
        for event in session.scalars(select(Event).where(Event.inquiry_id.in_(inquiry_ids))
                                     .order_by(Event.created_at, Event.id)):
            reported = status_of_event(event.name, None)
            events[event.inquiry_id or ""].append({
                "event": event.name, "status": reported.value if reported else None,
                "at": iso_utc(event.created_at), "received_at": iso_utc(event.received_at), "applied": event.applied})
    consents = session.scalars(select(Consent).where(Consent.contact_id == contact.id).order_by(Consent.id)).all()
    jobs = contact_jobs(session, contact, inquiry_ids)
    return {
        "email": contact.email, "first_name": contact.first_name, "wp_user_id": contact.wp_user_id,
        "created_at": iso_utc(contact.created_at), "consent_withdrawn_at": iso_utc(contact.consent_withdrawn_at),
        "kyc": kyc_status(session, email, lapse=lapse).as_json(),
        "consents": [{"user_type": c.user_type, "text_version": c.text_version, "source": c.source,
                      "created_at": iso_utc(c.created_at), "withdrawn_at": iso_utc(c.withdrawn_at)}
                     for c in consents],
        "inquiries": [{**view.as_json(), "history": events[view.inquiry_id]} for view in views],
        "jobs": [_job_json(job) for job in jobs],
        "dead_jobs": sum(1 for job in jobs if job.state == queue.DEAD),
    }


def contact_view(session: Session, email: str, *, now: datetime,
                 targets: Mapping[str, int], lapse: renewal.Policy | None = None) -> dict[str, object] | None:
    """`kyc-bridge contact EMAIL`: the admin's detail view (`contact_detail`) and the audit entries
    about the person, their inquiries and their jobs, oldest first. None when the email is unknown."""
    detail = contact_detail(session, email, now=now, targets=targets, lapse=lapse)
    contact = contact_by_email(session, email)
    if detail is None or contact is None:
        return None
    subjects = [f"contact:{contact.id}", *(i["inquiry_id"] for i in detail["inquiries"]),  # type: ignore[attr-defined]
                *(f"job:{job['id']}" for job in detail["jobs"])]  # type: ignore[attr-defined]
    history = session.scalars(select(AuditEntry).where(AuditEntry.subject.in_(subjects)).order_by(AuditEntry.seq))
    return {**detail, "history": [{"seq": entry.seq, "at": iso_utc(entry.at), "action": entry.action,
                                   "subject": entry.subject, "detail": json.loads(entry.detail)}
                                  for entry in history]}
