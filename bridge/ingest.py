"""Webhook intake: one transaction per event — event row, inquiry state, outbox jobs, audit entry.

Calls to other systems never happen here (Persona's deadline is 5 s); they are jobs for the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit, emails, notify, states
from bridge.config import UNKNOWN_USER_TYPE, Config
from bridge.persona.events import InquirySnapshot, PersonaEvent
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Contact, Event, Inquiry

CRM_SYNC = "crm.sync"
_ATTEMPTS = 3  # races on first insert of a contact or inquiry are retried, then surface


@dataclass(frozen=True)
class IngestResult:
    duplicate: bool
    status_changed: bool = False


def ingest(sessions: sessionmaker[Session], config: Config, event: PersonaEvent, body: bytes,
           *, now: datetime) -> IngestResult:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with transaction(sessions) as session:
                return _ingest(session, config, event, body, now)
        except IntegrityError:
            with transaction(sessions) as session:
                if session.scalar(select(Event.id).where(Event.event_id == event.event_id)):
                    return IngestResult(duplicate=True)
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _ingest(session: Session, config: Config, event: PersonaEvent, body: bytes, now: datetime) -> IngestResult:
    record = Event(event_id=event.event_id, name=event.name, inquiry_id=event.related_inquiry_id,
                   created_at=event.created_at, received_at=now, applied=False,
                   payload=body.decode("utf-8", errors="replace"))
    session.add(record)
    session.flush()  # a duplicate event id fails here, before any state is touched
    if event.inquiry is None:
        return IngestResult(duplicate=False)
    changed = _apply_to_inquiry(session, config, event, event.inquiry, record, now)
    return IngestResult(duplicate=False, status_changed=changed)


def _apply_to_inquiry(session: Session, config: Config, event: PersonaEvent, snapshot: InquirySnapshot,
                      record: Event, now: datetime) -> bool:
    inquiry = session.scalars(
        select(Inquiry).where(Inquiry.inquiry_id == snapshot.inquiry_id).with_for_update()
    ).one_or_none()
    reported = states.status_of_event(event.name, snapshot.status)
    if inquiry is None:
        # A first event that reports no status of its own (a redaction) still shows the current one.
        initial = reported or states.normalize_status(snapshot.status)
        if initial is None:
            return False
        inquiry = _new_inquiry(config, snapshot, initial)
        session.add(inquiry)
        current = states.InquiryState(status=initial if reported is None else None)
    else:
        current = states.InquiryState(states.Status(inquiry.status), inquiry.decided_at, inquiry.decided_by)
    _link_contact(session, inquiry, snapshot, now)
    if snapshot.reference_id and not inquiry.reference_id:
        inquiry.reference_id = snapshot.reference_id
    if event.name == states.REDACTED_EVENT and inquiry.redacted_at is None:
        inquiry.redacted_at = snapshot.redacted_at or event.created_at
        audit.append(session, "inquiry.redacted", inquiry.inquiry_id, {"event_id": event.event_id}, at=now)

    if reported is None:
        session.flush()
        return False
    transition = states.apply(current, reported, event.created_at, event.event_id)
    record.applied = transition.applied
    if transition.applied:
        inquiry.status = transition.state.status.value  # type: ignore[union-attr]
        inquiry.decided_at = transition.state.decided_at
        inquiry.decided_by = transition.state.decided_by
    # A status seen only on a redaction was never decided by an event, so it was never synced.
    changed = transition.status_changed or (transition.applied and current.decided_by is None)
    if changed:
        session.flush()
        _on_status_change(session, config, inquiry, current.status, event, now)
    return changed


def _new_inquiry(config: Config, snapshot: InquirySnapshot, status: states.Status) -> Inquiry:
    user_type = config.user_type_for_template(snapshot.template_id)
    return Inquiry(
        inquiry_id=snapshot.inquiry_id, template_id=snapshot.template_id,
        user_type=user_type.name if user_type else UNKNOWN_USER_TYPE,
        level=user_type.level if user_type else None,
        status=status.value, decided_at=None, decided_by=None,
    )


def _link_contact(session: Session, inquiry: Inquiry, snapshot: InquirySnapshot, now: datetime) -> None:
    """Attach the inquiry to its contact: by our opaque reference id first (set at onboarding),
    else by the email in the payload."""
    if inquiry.contact_id is not None:
        return
    if snapshot.reference_id:
        by_reference = session.scalar(select(Contact.id).where(Contact.reference_id == snapshot.reference_id))
        if by_reference is not None:
            inquiry.contact_id = by_reference
            return
    email = emails.normalize(snapshot.email)
    if email is None:
        return
    contact = session.scalars(select(Contact).where(Contact.email == email)).one_or_none()
    if contact is None:
        contact = Contact(email=email, first_name=snapshot.first_name, created_at=now, updated_at=now)
        session.add(contact)
        session.flush()  # a concurrent first insert of this email fails here; ingest() retries
    elif snapshot.first_name and not contact.first_name:
        contact.first_name = snapshot.first_name
    inquiry.contact_id = contact.id


def _on_status_change(session: Session, config: Config, inquiry: Inquiry, previous: states.Status | None,
                      event: PersonaEvent, now: datetime) -> None:
    audit.append(session, "inquiry.status", inquiry.inquiry_id, {
        "event_id": event.event_id, "from": previous.value if previous else None,
        "to": inquiry.status, "user_type": inquiry.user_type,
    }, at=now)
    # The job reads the newest state when it runs, so one queued sync per inquiry is enough.
    queue.enqueue(session, CRM_SYNC, inquiry_id=inquiry.inquiry_id, payload={"inquiry_id": inquiry.inquiry_id},
                  max_attempts=config.max_attempts, now=now, coalesce=True)
    # Unlike the CRM sync, each status change is its own n8n event (an email), keyed on the new status.
    notify.on_status_change(session, config, inquiry, occurred_at=event.created_at, now=now)
