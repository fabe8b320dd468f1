"""Webhook intake: event rows, inquiry state, outbox jobs and audit entries, committed together.

Calls to other systems never happen here (Persona's deadline is 5 s); they are jobs for the worker.
Several events may share one transaction (see bridge.group_commit): a 200 for any of them is only
sent after that transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, inspect, select
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit, emails, notify, states
from bridge.config import UNKNOWN_USER_TYPE, Config
from bridge.persona.events import InquirySnapshot, PersonaEvent
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Contact, Event, Inquiry

CRM_SYNC = "crm.sync"
# A concurrent writer may store the same event, contact or inquiry first; a retry sees its rows.
_ATTEMPTS = 3


@dataclass(frozen=True)
class IngestResult:
    duplicate: bool
    status_changed: bool = False


def ingest(sessions: sessionmaker[Session], config: Config, event: PersonaEvent, body: bytes,
           *, now: datetime) -> IngestResult:
    return ingest_many(sessions, config, [(event, body)], now=now)[0]


def ingest_many(sessions: sessionmaker[Session], config: Config, items: Sequence[tuple[PersonaEvent, bytes]],
                *, now: datetime) -> list[IngestResult]:
    """Store events in one transaction, in the given order; one result per item."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with transaction(sessions) as session:
                return _ingest_all(session, config, items, now)
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _ingest_all(session: Session, config: Config, items: Sequence[tuple[PersonaEvent, bytes]],
                now: datetime) -> list[IngestResult]:
    known = set(session.scalars(select(Event.event_id).where(Event.event_id.in_({e.event_id for e, _ in items}))))
    inquiry_ids = sorted({e.inquiry.inquiry_id for e, _ in items if e.inquiry and e.event_id not in known})
    inquiries: dict[str, Inquiry] = {}
    if inquiry_ids:
        # One statement, in a fixed order: concurrent batches lock shared inquiries without deadlocking.
        rows = session.scalars(select(Inquiry).where(Inquiry.inquiry_id.in_(inquiry_ids))
                               .order_by(Inquiry.inquiry_id).with_for_update())
        inquiries = {row.inquiry_id: row for row in rows}
        queue.prefetch_waiting(session, inquiry_ids)
    contacts = _known_contacts(session, [e.inquiry for e, _ in items if e.inquiry and e.event_id not in known])
    results, records = [], []
    # Nothing below needs to read back what it wrote: one flush at commit sends the inserts in batches.
    with session.no_autoflush:
        for event, body in items:
            results.append(_ingest_one(session, config, event, body, known, inquiries, contacts, records, now))
    if records:
        session.execute(insert(Event), records)  # one multi-row INSERT for the batch
    return results


def _ingest_one(session: Session, config: Config, event: PersonaEvent, body: bytes, known: set[str],
                inquiries: dict[str, Inquiry], contacts: dict[str, Contact], records: list[dict[str, object]],
                now: datetime) -> IngestResult:
    if event.event_id in known:
        return IngestResult(duplicate=True)
    known.add(event.event_id)
    record: dict[str, object] = {
        "event_id": event.event_id, "name": event.name, "inquiry_id": event.related_inquiry_id,
        "created_at": event.created_at, "received_at": now, "applied": False,
        "payload": body.decode("utf-8", errors="replace"),
    }
    records.append(record)
    changed = event.inquiry is not None and _apply_to_inquiry(
        session, config, event, event.inquiry, record, inquiries, contacts, now)
    return IngestResult(duplicate=False, status_changed=changed)


def _known_contacts(session: Session, snapshots: list[InquirySnapshot]) -> dict[str, Contact]:
    """The contacts these events may link to, keyed `ref:<reference id>` and `email:<email>`."""
    references = {s.reference_id for s in snapshots if s.reference_id}
    addresses = {e for e in (emails.normalize(s.email) for s in snapshots) if e}
    if not references and not addresses:
        return {}
    found = session.scalars(select(Contact).where(
        Contact.reference_id.in_(references) | Contact.email.in_(addresses)))
    contacts: dict[str, Contact] = {}
    for contact in found:
        if contact.reference_id:
            contacts[f"ref:{contact.reference_id}"] = contact
        if contact.email:
            contacts[f"email:{contact.email}"] = contact
    return contacts


def _apply_to_inquiry(session: Session, config: Config, event: PersonaEvent, snapshot: InquirySnapshot,
                      record: dict[str, object], inquiries: dict[str, Inquiry], contacts: dict[str, Contact],
                      now: datetime) -> bool:
    inquiry = inquiries.get(snapshot.inquiry_id)
    reported = states.status_of_event(event.name, snapshot.status)
    if inquiry is None:
        # A first event that reports no status of its own (a redaction) still shows the current one.
        initial = reported or states.normalize_status(snapshot.status)
        if initial is None:
            return False
        inquiry = inquiries[snapshot.inquiry_id] = _new_inquiry(config, snapshot, initial)
        session.add(inquiry)
        current = states.InquiryState(status=initial if reported is None else None)
    else:
        current = states.InquiryState(states.Status(inquiry.status), inquiry.decided_at, inquiry.decided_by)
    _link_contact(session, inquiry, snapshot, contacts, now)
    if snapshot.reference_id and not inquiry.reference_id:
        inquiry.reference_id = snapshot.reference_id
    if event.name == states.REDACTED_EVENT and inquiry.redacted_at is None:
        inquiry.redacted_at = snapshot.redacted_at or event.created_at
        audit.append(session, "inquiry.redacted", inquiry.inquiry_id, {"event_id": event.event_id}, at=now)

    if reported is None:
        return False
    transition = states.apply(current, reported, event.created_at, event.event_id)
    record["applied"] = transition.applied
    if transition.applied:
        inquiry.status = transition.state.status.value  # type: ignore[union-attr]
        inquiry.decided_at = transition.state.decided_at
        inquiry.decided_by = transition.state.decided_by
    # A status seen only on a redaction was never decided by an event, so it was never synced.
    changed = transition.status_changed or (transition.applied and current.decided_by is None)
    if changed:
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


def _link_contact(session: Session, inquiry: Inquiry, snapshot: InquirySnapshot, contacts: dict[str, Contact],
                  now: datetime) -> None:
    """Attach the inquiry to its contact: by our opaque reference id first (set at onboarding),
    else by the email in the payload, creating that contact when it is new."""
    if inquiry.contact_id is not None or inspect(inquiry).attrs.contact.loaded_value not in (None, NO_VALUE):
        return  # linked before, or earlier in this batch
    contact = contacts.get(f"ref:{snapshot.reference_id}") if snapshot.reference_id else None
    email = emails.normalize(snapshot.email)
    if contact is None and email is not None:
        contact = contacts.get(f"email:{email}")
        if contact is None:
            # a concurrent first insert of this email fails at commit; ingest_many() retries
            contact = contacts[f"email:{email}"] = Contact(email=email, first_name=snapshot.first_name,
                                                           created_at=now, updated_at=now)
            session.add(contact)
        elif snapshot.first_name and not contact.first_name:
            contact.first_name = snapshot.first_name
    if contact is not None:
        inquiry.contact = contact


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
