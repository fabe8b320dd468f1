"""Admin reads: stored inquiry state for the API. Answers only what is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge.outbox.crm_sync import SKIPPED_PREFIX
from bridge.kyc.timestamps import iso_utc
from bridge.store import queue
from bridge.store.models import Contact, Inquiry, Job


@dataclass(frozen=True)
class InquiryView:
    inquiry_id: str
    status: str
    user_type: str
    level: str | None
    email: str | None
    template_id: str | None
    reference_id: str | None
    decided_at: datetime | None
    decided_by: str | None
    redacted_at: datetime | None
    updated_at: datetime
    crm_sync: str  # none | pending | done | skipped | dead
    crm_sync_error: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "inquiry_id": self.inquiry_id, "status": self.status, "user_type": self.user_type,
            "level": self.level, "email": self.email, "template_id": self.template_id,
            "reference_id": self.reference_id, "decided_at": iso_utc(self.decided_at),
            "decided_by_event": self.decided_by, "redacted_at": iso_utc(self.redacted_at),
            "updated_at": iso_utc(self.updated_at), "crm_sync": self.crm_sync,
            "crm_sync_error": self.crm_sync_error,
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


def _views(session: Session, rows: list[tuple[Inquiry, str | None]]) -> list[InquiryView]:
    syncs = _sync_states(session, [inquiry.inquiry_id for inquiry, _ in rows])
    return [
        InquiryView(
            inquiry.inquiry_id, inquiry.status, inquiry.user_type, inquiry.level, email,
            inquiry.template_id, inquiry.reference_id, inquiry.decided_at, inquiry.decided_by,
            inquiry.redacted_at, inquiry.updated_at,
            *syncs.get(inquiry.inquiry_id, ("none", None)),
        )
        for inquiry, email in rows
    ]


def list_inquiries(session: Session, *, status: str | None, user_type: str | None, email: str | None,
                   page: int, per_page: int) -> Page:
    query = select(Inquiry, Contact.email).outerjoin(Contact, Contact.id == Inquiry.contact_id)
    if status:
        query = query.where(Inquiry.status == status)
    if user_type:
        query = query.where(Inquiry.user_type == user_type)
    if email:
        query = query.where(Contact.email == email)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Inquiry.updated_at.desc(), Inquiry.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return Page(_views(session, [(r[0], r[1]) for r in rows]), total, page, per_page)


def get_inquiry(session: Session, inquiry_id: str) -> InquiryView | None:
    row = session.execute(
        select(Inquiry, Contact.email).outerjoin(Contact, Contact.id == Inquiry.contact_id)
        .where(Inquiry.inquiry_id == inquiry_id)
    ).first()
    return _views(session, [(row[0], row[1])])[0] if row else None


REVIEW_TARGET_HOURS = 24
DECIDED_OR_SUBMITTED = ("completed", "needs_review", "approved", "declined")


def stats(session: Session, *, now: datetime) -> dict[str, object]:
    """Counts per status, the funnel, and the review queue with waiting times against 24 h."""
    from bridge.store.models import Consent

    counts = dict(session.execute(select(Inquiry.status, func.count()).group_by(Inquiry.status)).all())
    # The funnel counts people; an inquiry known to no contact (webhook without email) counts as one.
    person = func.coalesce(Inquiry.contact_id, -Inquiry.id)

    def people(*statuses: str) -> int:
        query = select(func.count(func.distinct(person)))
        return session.scalar(query.where(Inquiry.status.in_(statuses)) if statuses else query) or 0

    consented = session.scalar(select(func.count(func.distinct(Consent.contact_id)))) or 0
    started = people()
    completed = people(*DECIDED_OR_SUBMITTED)
    approved = people("approved")
    queue_rows = session.execute(
        select(Inquiry.inquiry_id, Inquiry.user_type, Inquiry.level, Inquiry.decided_at, Inquiry.updated_at)
        .where(Inquiry.status == "needs_review").order_by(Inquiry.decided_at)
    ).all()
    review_queue = []
    for inquiry_id, user_type, level, decided_at, updated_at in queue_rows:
        since = decided_at or updated_at
        waited = (now - since).total_seconds() / 3600
        review_queue.append({
            "inquiry_id": inquiry_id, "user_type": user_type, "level": level,
            "waiting_since": iso_utc(since), "waiting_hours": round(waited, 2),
            "overdue": waited > REVIEW_TARGET_HOURS,
        })
    return {
        "counts": counts,
        "funnel": {"consented": consented, "started": started, "completed": completed,
                   "approved": approved},
        "review_queue": review_queue,
        "review_target_hours": REVIEW_TARGET_HOURS,
    }


def contact_view(session: Session, email: str) -> dict[str, object] | None:
    """`kyc-bridge contact EMAIL`: what the bridge holds on a person (the privacy export), their
    standing (as GET /api/v1/contacts/<email>/kyc), their jobs, and the audit entries about them
    or their inquiries. None when the email is unknown."""
    from bridge.consent import onboarding, privacy
    from bridge.store.models import AuditEntry

    held = privacy.export(session, email)
    contact_id = session.scalar(select(Contact.id).where(Contact.email == email))
    if held is None or contact_id is None:
        return None
    inquiry_ids = [item["inquiry_id"] for item in held["inquiries"]]
    # Jobs name an inquiry, or (a tag for a person without one) the contact in their canonical JSON payload.
    own = (Job.inquiry_id.in_(inquiry_ids) if inquiry_ids else Job.id.is_(None)) | \
        Job.payload.like(f'%"contact_id":{int(contact_id)},%') | Job.payload.like(f'%"contact_id":{int(contact_id)}}}')
    jobs = session.scalars(select(Job).where(own).order_by(Job.id)).all()
    subjects = [f"contact:{contact_id}", *inquiry_ids, *(f"job:{job.id}" for job in jobs)]
    history = session.scalars(select(AuditEntry).where(AuditEntry.subject.in_(subjects))
                              .order_by(AuditEntry.seq)).all()
    return {
        **held,
        "kyc": onboarding.kyc_status(session, email).as_json(),
        "jobs": [{"id": job.id, "kind": job.kind, "inquiry_id": job.inquiry_id, "state": job.state,
                  "attempts": job.attempts, "max_attempts": job.max_attempts, "last_error": job.last_error,
                  "result": job.result, "updated_at": iso_utc(job.updated_at)} for job in jobs],
        "history": [{"seq": entry.seq, "at": iso_utc(entry.at), "action": entry.action, "subject": entry.subject,
                     "detail": json.loads(entry.detail)} for entry in history],
    }
