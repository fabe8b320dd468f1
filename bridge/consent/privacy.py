"""Privacy: export what the bridge holds on a person, erase it on request, and keep webhook
bodies only for the retention window.

Erasure removes personal data (email, name, WordPress user id, consent IP hash and user agent,
stored webhook bodies) but keeps the KYC decisions (inquiry ids, statuses, times) for legal
reasons; they stay linked to a now anonymous contact. It also asks Persona to redact, and takes the
person's KYC tags off their FluentCRM contact ([privacy] erase_crm_tags) through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bridge import audit
from bridge.kyc.timestamps import iso_utc
from bridge.store import queue
from bridge.store.models import Consent, Contact, Event, Inquiry, Link

RETAINED = (
    "KYC decisions (Persona inquiry ids, statuses, user types, levels and decision times), kept to "
    "meet legal record-keeping duties; they are no longer linked to a name or email",
    "the audit log, which never held personal data",
)


def export(session: Session, email: str) -> dict[str, Any] | None:
    contact = session.scalars(select(Contact).where(Contact.email == email)).one_or_none()
    if contact is None:
        return None
    consents = session.scalars(select(Consent).where(Consent.contact_id == contact.id).order_by(Consent.id)).all()
    inquiries = session.scalars(select(Inquiry).where(Inquiry.contact_id == contact.id).order_by(Inquiry.id)).all()
    return {
        "email": contact.email, "first_name": contact.first_name, "reference_id": contact.reference_id,
        "wp_user_id": contact.wp_user_id, "consent_withdrawn_at": iso_utc(contact.consent_withdrawn_at),
        "consents": [{"user_type": c.user_type, "text_version": c.text_version, "source": c.source,
                      "created_at": iso_utc(c.created_at), "withdrawn_at": iso_utc(c.withdrawn_at)} for c in consents],
        "inquiries": [{"inquiry_id": i.inquiry_id, "status": i.status, "user_type": i.user_type,
                       "level": i.level, "decided_at": iso_utc(i.decided_at)} for i in inquiries],
    }


@dataclass(frozen=True)
class Erasure:
    inquiries: int
    persona_redaction: str  # requested | not configured
    crm_tags: str = "off"  # removal requested | off | not configured

    def as_json(self) -> dict[str, Any]:
        return {"erased": True, "retained": list(RETAINED), "persona_redaction": self.persona_redaction,
                "crm_tags": self.crm_tags}


def erase(session: Session, email: str, *, redact_at_persona: bool, max_attempts: int, now: datetime,
          crm_tags: str = "off") -> Erasure | None:
    """Forget the person. `crm_tags`: "remove" queues a `crm.erase` job that takes their KYC tags
    off their FluentCRM contact ([privacy] erase_crm_tags with FluentCRM configured); it carries
    the email, the only copy left, until it has run (bridge.store.queue.PERSONAL_PAYLOAD_KEYS).
    "off" or "not configured" queue nothing and are only reported back."""
    contact = session.scalars(select(Contact).where(Contact.email == email).with_for_update()).one_or_none()
    if contact is None:
        return None
    if crm_tags == "remove":
        # The person's key: it waits for a sync of theirs that is running, and runs before any
        # queued after it (which find no email and skip), so the tags come off last.
        queue.enqueue(session, queue.CRM_ERASE, inquiry_id=None, payload={"contact_id": contact.id, "email": email},
                      max_attempts=max_attempts, now=now, contact_key=queue.contact_key(contact.id, None))
        crm_tags = "removal requested"
    inquiry_ids = list(session.scalars(select(Inquiry.inquiry_id).where(Inquiry.contact_id == contact.id)))
    contact.email = contact.first_name = contact.wp_user_id = None
    contact.consent_withdrawn_at = contact.consent_withdrawn_at or now  # no further effects for them
    session.execute(update(Consent).where(Consent.contact_id == contact.id).values(ip_hash=None, user_agent=None))
    session.execute(update(Link).where(Link.contact_id == contact.id).values(expires_at=now))
    if inquiry_ids:
        session.execute(update(Event).where(Event.inquiry_id.in_(inquiry_ids)).values(payload=None))
    if redact_at_persona:
        queue_redactions(session, inquiry_ids, max_attempts=max_attempts, now=now)
    audit.append(session, "contact.erased", f"contact:{contact.id}", {"count": len(inquiry_ids)}, at=now)
    if not redact_at_persona:
        redaction = "not configured"
    else:
        redaction = "requested" if inquiry_ids else "nothing to redact"
    return Erasure(len(inquiry_ids), redaction, crm_tags)


def queue_redactions(session: Session, inquiry_ids: list[str], *, max_attempts: int, now: datetime) -> None:
    """Ask Persona to redact these inquiries (erasure, consent withdrawal): one job each."""
    for inquiry_id in inquiry_ids:
        queue.enqueue(session, queue.PERSONA_REDACT, inquiry_id=inquiry_id, payload={"inquiry_id": inquiry_id},
                      max_attempts=max_attempts, now=now, coalesce=True)


def purge_payloads(session: Session, *, before: datetime, now: datetime) -> int:
    """Drop webhook bodies received before `before`, and any personal data a finished job still
    holds (an erasure's email; finishing the job drops it already). Returns how many were dropped."""
    result = session.execute(
        update(Event).where(Event.received_at < before, Event.payload.is_not(None)).values(payload=None)
    )
    count = (result.rowcount or 0) + queue.clear_finished_personal_data(session)
    if count:
        audit.append(session, "retention.purged", "kyc_events", {"count": count}, at=now)
    return count
