"""An admin's one-click fixes: re-sync an inquiry to FluentCRM, retry dead jobs (a person's, or
all), resend a verification link; and sending a link to someone new (a shop's paid order). Each runs in the caller's transaction and leaves an audit entry.

The effects themselves stay with the worker: these only queue (or re-queue) outbox jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge import audit, queries
from bridge.config import Config
from bridge.consent import onboarding
from bridge.consent.onboarding import OnboardingError
from bridge.outbox import notify
from bridge.store import queue
from bridge.store.models import Consent, Inquiry


class NotFound(LookupError):
    """No such inquiry or person: the caller answers 404."""


class Refused(ValueError):
    """The person withdrew consent (or was erased): nothing may be sent for them."""


def resync(session: Session, config: Config, inquiry_id: str, *, now: datetime) -> bool:
    """Queue a `crm.sync` of the inquiry's current state. False when one is already waiting (it
    reads the newest state when it runs, so a second would change nothing)."""
    found = session.execute(select(Inquiry.id, Inquiry.contact_id).where(Inquiry.inquiry_id == inquiry_id)).first()
    if found is None:
        raise NotFound("no such inquiry")
    # The person's key, as the intake's syncs carry it: one write to their FluentCRM contact at a time.
    added = queue.enqueue(session, queue.CRM_SYNC, inquiry_id=inquiry_id, payload={"inquiry_id": inquiry_id},
                          max_attempts=config.max_attempts, now=now, coalesce=True,
                          contact_key=queue.contact_key(found.contact_id, inquiry_id))
    audit.append(session, "inquiry.resync", inquiry_id, {"count": int(added)}, at=now)
    return added


def retry_jobs(session: Session, email: str | None, *, now: datetime) -> list[int]:
    """Re-queue dead jobs and failed ones waiting for their next try: the person's (by email), or
    every one when `email` is None. Returns the ids re-queued."""
    if email is None:
        ids = queue.requeue(session, None, now=now)
    else:
        contact = queries.contact_by_email(session, email)
        if contact is None:
            raise NotFound("no data held for this email")
        inquiry_ids = list(session.scalars(select(Inquiry.inquiry_id).where(Inquiry.contact_id == contact.id)))
        stuck = [job.id for job in queries.contact_jobs(session, contact, inquiry_ids)
                 if job.state == queue.DEAD or (job.state == queue.QUEUED and job.last_error)]
        # requeue() takes None as "all": a person without stuck jobs must re-queue nothing.
        ids = queue.requeue(session, stuck, now=now) if stuck else []
    if ids:
        subject = "jobs" if email is None else f"contact:{contact.id}"
        audit.append(session, "jobs.requeued", subject, {"count": len(ids)}, at=now)
    return ids


@dataclass(frozen=True)
class LinkRequest:
    user_type: str


def resend_link(session: Session, config: Config, email: str, user_type: str | None, *, now: datetime) -> LinkRequest:
    """Queue a `kyc.link_requested` event: n8n emails the person a fresh verification link. Without a
    user type, the person's newest inquiry's (or consent's) configured user type is used."""
    contact = queries.contact_by_email(session, email)
    if contact is None:
        raise NotFound("no data held for this email")
    if contact.consent_withdrawn_at is not None:
        raise Refused("the person withdrew consent: no link is sent")
    if user_type is None:
        user_type = _newest_user_type(session, config, contact.id)
        if user_type is None:
            raise OnboardingError("user_type", "user_type is required: the person has no configured user type yet")
    notify.request_link(session, config, contact_id=contact.id, user_type=user_type, now=now)
    audit.append(session, "link.requested", f"contact:{contact.id}", {"user_type": user_type}, at=now)
    return LinkRequest(user_type)


def _newest_user_type(session: Session, config: Config, contact_id: int) -> str | None:
    for model in (Inquiry, Consent):
        for user_type in session.scalars(select(model.user_type).where(model.contact_id == contact_id)
                                         .order_by(model.id.desc())):
            if user_type in config.user_types:
                return user_type
    return None



def send_link(session: Session, config: Config, *, email: str, user_type: str, first_name: str | None,
              now: datetime, key: str | None = None) -> None:
    """Have n8n email a verification link (`kyc.link_requested`) to anyone, known or new (the CLI's
    `link --send`, a shop's paid order). OnboardingError names a bad field; Refused after a withdrawal."""
    normalized = onboarding.validate_link_request(config, email, user_type)
    contact = onboarding.upsert_contact(session, normalized, first_name=first_name, wp_user_id=None, now=now)
    if contact.consent_withdrawn_at is not None:
        raise Refused("the person withdrew consent: no link is sent")
    notify.request_link(session, config, contact_id=contact.id, user_type=user_type, now=now, key=key)
