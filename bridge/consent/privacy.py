"""Privacy: export what the bridge holds on a person, erase it on request, and keep webhook
bodies only for the retention window.

Erasure removes personal data (email, name, WordPress user id, consent IP hash and user agent,
stored webhook bodies) but keeps the KYC decisions (inquiry ids, statuses, times) for legal
reasons; they stay linked to a now anonymous contact. It also asks Persona to redact.
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

    def as_json(self) -> dict[str, Any]:
        return {"erased": True, "retained": list(RETAINED), "persona_redaction": self.persona_redaction}


def erase(session: Session, email: str, *, redact_at_persona: bool, max_attempts: int, now: datetime) -> Erasure | None:
    contact = session.scalars(select(Contact).where(Contact.email == email).with_for_update()).one_or_none()
    if contact is None:
        return None
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
    return Erasure(len(inquiry_ids), redaction)


def queue_redactions(session: Session, inquiry_ids: list[str], *, max_attempts: int, now: datetime) -> None:
    """Ask Persona to redact these inquiries (erasure, consent withdrawal): one job each."""
    for inquiry_id in inquiry_ids:
        queue.enqueue(session, queue.PERSONA_REDACT, inquiry_id=inquiry_id, payload={"inquiry_id": inquiry_id},
                      max_attempts=max_attempts, now=now, coalesce=True)


def purge_payloads(session: Session, *, before: datetime, now: datetime) -> int:
    result = session.execute(
        update(Event).where(Event.received_at < before, Event.payload.is_not(None)).values(payload=None)
    )
    count = result.rowcount or 0
    if count:
        audit.append(session, "retention.purged", "kyc_events", {"count": count}, at=now)
    return count
