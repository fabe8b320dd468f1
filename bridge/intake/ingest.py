"""Webhook intake: event rows, inquiry state, outbox jobs and audit entries, committed together.

Calls to other systems never happen here (Persona's deadline is 5 s); they are jobs for the worker.
Several events may share one transaction (see bridge.intake.writer and bridge.intake.group_commit): a 200
for any of them is only sent after that transaction commits.

This is the hot path of the service, so it is written with prebuilt SQLAlchemy Core statements,
most of them run through `store.driver_sql`, rather than the ORM unit of work: a batch reads what
it needs in at most four queries, decides every state change in memory, then writes each table
with one statement and takes the global audit lock last.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, exists, insert, or_, select, update
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from bridge import audit
from bridge.kyc import emails, monitoring, states
from bridge.outbox import notify
from bridge.config import UNKNOWN_USER_TYPE, Config
from bridge.persona import events
from bridge.persona.events import InquirySnapshot, PersonaEvent
from bridge.store import queue
from bridge.store.driver_sql import DriverStatement, ListStatement, in_list, pipelined
from bridge.store.engine import StoreUnavailable, core_transaction
from bridge.store.limits import EVENT_LIMITS
from bridge.store.models import Contact, Event, Inquiry

log = logging.getLogger(__name__)

# A concurrent writer may store the same event, contact or inquiry first; a retry sees its rows.
_ATTEMPTS = 3


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    duplicate: bool
    status_changed: bool = False


class Unstorable(events.EventFormatError):
    """The store refused this event's values (a limit the parser's checks missed): answered 400,
    since every retry would fail the same way."""


def parse(body: bytes) -> PersonaEvent:
    """A webhook body as an event the store can hold; events.EventFormatError (400) otherwise."""
    return events.parse(body, EVENT_LIMITS)


def ingest_each(engine: Engine, config: Config, items: Sequence[tuple[PersonaEvent, bytes]],
                *, now: datetime) -> list[IngestResult | Exception]:
    """`ingest_many`, but one event the store refuses costs only its own answer: when a shared
    transaction fails for a reason other than the store being unavailable, its halves are committed
    apart until the offender is alone. The answer per item is its result or its exception;
    StoreUnavailable (and anything not an Exception) still fails the whole batch."""
    try:
        return list(ingest_many(engine, config, items, now=now))
    except StoreUnavailable:
        raise
    except Exception as exc:
        if len(items) == 1:
            return [_as_unstorable(exc)]
        log.warning("a transaction of %d event(s) failed (%s); committing them apart", len(items),
                    type(exc).__name__)
    middle = len(items) // 2
    return ingest_each(engine, config, items[:middle], now=now) + ingest_each(engine, config, items[middle:], now=now)


def _as_unstorable(exc: Exception) -> Exception:
    # DataError: too long, NUL, out of range; UnicodeError: a lone surrogate, raised by the driver
    refused_value = isinstance(exc, (DataError, UnicodeError)) or (
        isinstance(exc, StatementError) and isinstance(exc.orig, (UnicodeError, ValueError, OverflowError)))
    if refused_value:
        return Unstorable(f"the store cannot hold this event ({type(exc).__name__})")
    return exc


def ingest_many(engine: Engine, config: Config, items: Sequence[tuple[PersonaEvent, bytes]],
                *, now: datetime, source: str | None = None) -> list[IngestResult]:
    """Store events in one transaction, in the given order; one result per item. `source` names
    where events came from when not from a webhook (e.g. "reconcile"): each event stored for the
    first time then gets an `event.received` audit entry naming the source."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with core_transaction(engine) as connection:
                results = _Batch(connection, config, now, source).run(items)
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
            continue
        for (event, _), result in zip(items, results):  # one line per webhook, once it is committed
            log.info("webhook %s %s: %s", event.event_id, event.name, "duplicate" if result.duplicate else "stored")
        return results
    raise AssertionError("unreachable")


# -- statements, built once -------------------------------------------------------------------

_events, _inquiries, _contacts = Event.__table__, Inquiry.__table__, Contact.__table__

_KNOWN_EVENTS = ListStatement(lambda n: select(_events.c.event_id).where(_events.c.event_id.in_(in_list("ids", n))))
# In a fixed order: concurrent batches lock shared inquiries without deadlocking.
_LOCK_INQUIRIES = ListStatement(lambda n: (
    select(_inquiries.c.id, _inquiries.c.inquiry_id, _inquiries.c.contact_id, _inquiries.c.reference_id,
           _inquiries.c.user_type, _inquiries.c.status, _inquiries.c.decided_at, _inquiries.c.decided_by,
           _inquiries.c.redacted_at, _inquiries.c.monitoring_kind, _inquiries.c.monitoring_report_id,
           _inquiries.c.monitoring_since, _inquiries.c.monitoring_event_at,
           # an erased person's contact keeps its row without its email (privacy.erase)
           exists().where(_contacts.c.id == _inquiries.c.contact_id, _contacts.c.email.is_(None)).label("erased"))
    .where(_inquiries.c.inquiry_id.in_(in_list("ids", n)))
    .order_by(_inquiries.c.inquiry_id).with_for_update()
))
# Report events stored before their inquiry was known (a monitoring report can arrive first): read
# with the batch's other reads, applied when the inquiry's first event creates it (`_adopt_reports`).
_EARLY_REPORTS = ListStatement(lambda n: (
    select(_events.c.event_id, _events.c.name, _events.c.inquiry_id, _events.c.created_at, _events.c.payload)
    .where(_events.c.inquiry_id.in_(in_list("ids", n)), _events.c.name.like(bindparam("reports")),
           _events.c.applied == bindparam("applied"),
           ~exists().where(_inquiries.c.inquiry_id == _events.c.inquiry_id))
))
_MARK_APPLIED = DriverStatement(update(_events).where(_events.c.event_id == bindparam("b_event_id"))
                                .values(applied=bindparam("b_applied")))
_CONTACT_COLUMNS = (_contacts.c.id, _contacts.c.email, _contacts.c.reference_id, _contacts.c.first_name)
_FIND_CONTACTS = ListStatement(lambda refs, emails: select(*_CONTACT_COLUMNS).where(or_(
    *([_contacts.c.reference_id.in_(in_list("refs", refs))] if refs else []),
    *([_contacts.c.email.in_(in_list("emails", emails))] if emails else []))))
_INSERT_CONTACTS = insert(_contacts).returning(_contacts.c.id, sort_by_parameter_order=True)
_NAME_CONTACTS = DriverStatement(update(_contacts).where(_contacts.c.id == bindparam("b_id"))
                                 .values(first_name=bindparam("b_first_name"), updated_at=bindparam("b_now")))
_INSERT_INQUIRIES = DriverStatement(insert(_inquiries))
_UPDATE_INQUIRIES = DriverStatement(update(_inquiries).where(_inquiries.c.id == bindparam("b_id")).values(
    contact_id=bindparam("b_contact_id"), reference_id=bindparam("b_reference_id"), status=bindparam("b_status"),
    decided_at=bindparam("b_decided_at"), decided_by=bindparam("b_decided_by"),
    redacted_at=bindparam("b_redacted_at"), monitoring_kind=bindparam("b_monitoring_kind"),
    monitoring_report_id=bindparam("b_monitoring_report_id"), monitoring_since=bindparam("b_monitoring_since"),
    monitoring_event_at=bindparam("b_monitoring_event_at"), updated_at=bindparam("b_now")))
_INSERT_EVENTS = DriverStatement(insert(_events))


# -- the batch ---------------------------------------------------------------------------------

@dataclass(eq=False)
class _ContactRow:
    id: int | None  # None until inserted
    email: str | None
    first_name: str | None
    reference_id: str | None = None
    renamed: bool = False  # first name learnt from this batch


@dataclass(eq=False)
class _InquiryRow:
    id: int | None  # None: new in this batch
    inquiry_id: str
    user_type: str
    status: str
    contact_id: int | None = None
    contact: _ContactRow | None = None  # linked in this batch
    reference_id: str | None = None
    template_id: str | None = None
    level: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    redacted_at: datetime | None = None
    monitoring_kind: str | None = None
    monitoring_report_id: str | None = None
    monitoring_since: datetime | None = None
    monitoring_event_at: datetime | None = None
    erased: bool = False  # its person was erased: their events keep their effect, not their data
    sync_waiting: bool = False  # a CRM sync is queued and not started: it will read the new state
    changed: bool = False

    @property
    def state(self) -> states.InquiryState:
        return states.InquiryState(states.Status(self.status), self.decided_at, self.decided_by)

    @property
    def under_monitoring_review(self) -> bool:
        return monitoring.holds_in_review(self)


@dataclass
class _Batch:
    connection: Connection
    config: Config
    now: datetime
    source: str | None = None  # see ingest_many
    known: set[str] = field(default_factory=set)  # event ids stored before or earlier in the batch
    inquiries: dict[str, _InquiryRow] = field(default_factory=dict)
    contacts: dict[str, _ContactRow] = field(default_factory=dict)  # keyed `ref:<id>` and `email:<email>`
    new_contacts: list[_ContactRow] = field(default_factory=list)
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    audit_entries: list[audit.Entry] = field(default_factory=list)
    job_rows: list[dict[str, Any]] = field(default_factory=list)
    # CRM sync rows and their inquiry: the person's key is known once new contacts have ids (_write)
    crm_rows: list[tuple[dict[str, Any], _InquiryRow]] = field(default_factory=list)
    # Monitoring reports of inquiries not known yet, stored or earlier in this batch, by inquiry id:
    # (created-at, event id, event name, has-match, report id, the batch's event row or None if stored)
    early_reports: dict[str, list[tuple[datetime, str, str, bool | None, str | None, dict[str, Any] | None]]] = \
        field(default_factory=dict)
    applied_before: list[str] = field(default_factory=list)  # stored event ids that apply now

    def run(self, items: Sequence[tuple[PersonaEvent, bytes]]) -> list[IngestResult]:
        self._read(self.connection, items)
        results = [self._ingest_one(event, body) for event, body in items]
        if self.source is not None:
            self.audit_entries.extend(
                ("event.received", event.related_inquiry_id or event.event_id,
                 {"event_id": event.event_id, "event": event.name, "source": self.source})
                for (event, _), result in zip(items, results) if not result.duplicate)
        self._write(self.connection)
        return results

    # reads: known event ids, the batch's inquiries (locked) and their waiting CRM syncs, the contacts
    # they may link to
    def _read(self, connection: Connection, items: Sequence[tuple[PersonaEvent, bytes]]) -> None:
        event_ids = sorted({e.event_id for e, _ in items})
        # Re-deliveries' inquiries are locked too: then the three reads do not depend on each other
        # and go to the store together (one round trip on PostgreSQL).
        inquiry_ids = sorted({e.inquiry.inquiry_id for e, _ in items if e.inquiry is not None}
                             | {e.related_inquiry_id for e, _ in items if _is_monitoring_report(e)})
        first_seen = sorted({e.inquiry.inquiry_id for e, _ in items if e.inquiry is not None})
        with pipelined(connection):
            known = _KNOWN_EVENTS.send(connection, {}, {"ids": event_ids})
            locked = _LOCK_INQUIRIES.send(connection, {}, {"ids": inquiry_ids}) if inquiry_ids else None
            early = (_EARLY_REPORTS.send(connection, {"reports": "report/%", "applied": False}, {"ids": first_seen})
                     if first_seen else None)
            # Asked after taking the inquiries' locks: a worker that claims one of these syncs now
            # reads the inquiry after this transaction (crm_sync reads it FOR SHARE).
            sync_waiting = queue.send_not_started_for(connection, queue.CRM_SYNC, inquiry_ids)
        self.known = {row["event_id"] for row in known.all()}
        for row in early.all() if early else []:
            self._keep_early_report(row)
        for row in locked.all() if locked else []:
            self.inquiries[row["inquiry_id"]] = _InquiryRow(**row)
        for inquiry_id in sync_waiting() & self.inquiries.keys():
            self.inquiries[inquiry_id].sync_waiting = True
        snapshots = [e.inquiry for e, _ in items if e.inquiry is not None and e.event_id not in self.known]
        unlinked = [s for s in snapshots
                    if s.inquiry_id not in self.inquiries or self.inquiries[s.inquiry_id].contact_id is None]
        references = {s.reference_id for s in unlinked if s.reference_id}
        addresses = {e for e in (emails.normalize(s.email) for s in unlinked) if e}
        if references or addresses:
            for row in _FIND_CONTACTS.run(connection, {}, {"refs": sorted(references), "emails": sorted(addresses)}):
                contact = _ContactRow(row.id, row.email, row.first_name, row.reference_id)
                if contact.reference_id:
                    self.contacts[f"ref:{contact.reference_id}"] = contact
                if contact.email:
                    self.contacts[f"email:{contact.email}"] = contact

    def _keep_early_report(self, row: dict[str, Any]) -> None:
        """A stored report whose inquiry is still unknown: its verdict is read again from its body
        (one dropped by the retention purge or an erasure can no longer apply)."""
        if row["payload"] is None:
            return
        try:
            stored = events.parse(row["payload"].encode("utf-8"), EVENT_LIMITS)
        except events.EventFormatError:
            return
        self.early_reports.setdefault(row["inquiry_id"], []).append(
            (row["created_at"], row["event_id"], row["name"], stored.has_match, stored.object_id, None))

    def _adopt_reports(self, inquiry: _InquiryRow) -> None:
        """The inquiry's first event is here: apply its reports that came before it, oldest first,
        by the same rule as a report on a known inquiry (monitoring.apply)."""
        for at, event_id, name, has_match, report_id, record in sorted(
                self.early_reports.pop(inquiry.inquiry_id, []), key=lambda report: (report[0], report[1])):
            found = monitoring.apply(monitoring.of(inquiry), name, has_match, report_id, at)
            if found is None:
                continue
            inquiry.monitoring_kind, inquiry.monitoring_report_id = found.kind, found.report_id
            inquiry.monitoring_since, inquiry.monitoring_event_at = found.since, found.event_at
            if record is not None:
                record["applied"] = True
            else:
                self.applied_before.append(event_id)

    def _ingest_one(self, event: PersonaEvent, body: bytes) -> IngestResult:
        if event.event_id in self.known:
            return IngestResult(event.event_id, duplicate=True)
        self.known.add(event.event_id)
        known = self.inquiries.get(event.related_inquiry_id or "")
        # A late webhook or a reconciled event of an erased person must not bring their data back.
        payload = None if known is not None and known.erased else body.decode("utf-8", errors="replace")
        record: dict[str, Any] = {
            "event_id": event.event_id, "name": event.name, "inquiry_id": event.related_inquiry_id,
            "created_at": event.created_at, "received_at": self.now, "applied": False, "payload": payload,
        }
        self.event_rows.append(record)
        if event.inquiry is not None:
            changed = self._apply(event, event.inquiry, record)
        else:
            changed = _is_monitoring_report(event) and self._monitor(event, record)
        return IngestResult(event.event_id, duplicate=False, status_changed=changed)

    def _monitor(self, event: PersonaEvent, record: dict[str, Any]) -> bool:
        """A monitoring report's verdict on a known inquiry; True when it puts the person into review
        or takes them out. A report on an inquiry the bridge has not seen yet is stored, and applies
        when the inquiry's first event comes (`_adopt_reports`)."""
        inquiry = self.inquiries.get(event.related_inquiry_id or "")
        if inquiry is None:
            self.early_reports.setdefault(event.related_inquiry_id or "", []).append(
                (event.created_at, event.event_id, event.name, event.has_match, event.object_id, record))
            return False
        found = monitoring.apply(monitoring.of(inquiry), event.name, event.has_match, event.object_id, event.created_at)
        if found is None:
            return False
        record["applied"] = True
        was_in_review = inquiry.under_monitoring_review
        inquiry.monitoring_kind, inquiry.monitoring_report_id = found.kind, found.report_id
        inquiry.monitoring_since, inquiry.monitoring_event_at, inquiry.changed = found.since, found.event_at, True
        return self._on_monitoring_change(inquiry, was_in_review, event)

    def _on_monitoring_change(self, inquiry: _InquiryRow, was_in_review: bool, event: PersonaEvent) -> bool:
        in_review = inquiry.under_monitoring_review
        if in_review == was_in_review:
            return False
        self.audit_entries.append(("inquiry.monitoring", inquiry.inquiry_id, {
            "event_id": event.event_id, "kind": inquiry.monitoring_kind,
            "to": monitoring.status_shown(inquiry),
        }))
        self._enqueue_sync(inquiry)
        if in_review:  # to compliance only: the person is never told of a sanctions or PEP hit
            self._enqueue(queue.N8N_EVENT, inquiry.inquiry_id, notify.monitoring_match_payload(
                inquiry.inquiry_id, inquiry.monitoring_kind or "", inquiry.monitoring_report_id or "",
                occurred_at=event.created_at))
        return True

    def _apply(self, event: PersonaEvent, snapshot: InquirySnapshot, record: dict[str, Any]) -> bool:
        inquiry = self.inquiries.get(snapshot.inquiry_id)
        reported = states.status_of_event(event.name, snapshot.status)
        created = inquiry is None
        if inquiry is None:
            # A first event that reports no status of its own (a redaction) still shows the current one.
            initial = reported or states.normalize_status(snapshot.status)
            if initial is None:
                return False
            inquiry = self.inquiries[snapshot.inquiry_id] = self._new_inquiry(snapshot, initial)
            current = states.InquiryState(status=initial if reported is None else None)
            self._adopt_reports(inquiry)
            was_in_review = False  # it did not exist: a match it adopted puts it into review now
        else:
            current = inquiry.state
            was_in_review = inquiry.under_monitoring_review
        self._link_contact(inquiry, snapshot)
        if snapshot.reference_id and not inquiry.reference_id:
            inquiry.reference_id, inquiry.changed = snapshot.reference_id, True
        if event.name == states.REDACTED_EVENT and inquiry.redacted_at is None:
            inquiry.redacted_at, inquiry.changed = snapshot.redacted_at or event.created_at, True
            self.audit_entries.append(("inquiry.redacted", inquiry.inquiry_id, {"event_id": event.event_id}))

        if reported is None:  # a first event without a status of its own may still bring a match in force
            return created and self._on_monitoring_change(inquiry, False, event)
        transition = states.apply(current, reported, event.created_at, event.event_id)
        record["applied"] = transition.applied
        if transition.applied:
            decided = transition.state
            inquiry.status = decided.status.value  # type: ignore[union-attr]
            inquiry.decided_at, inquiry.decided_by, inquiry.changed = decided.decided_at, decided.decided_by, True
        # A status seen only on a redaction was never decided by an event, so it was never synced.
        changed = transition.status_changed or (transition.applied and current.decided_by is None)
        if changed:
            self._on_status_change(inquiry, current.status, event)
        if transition.applied:  # a new decision ends a monitoring review; an older one cannot
            changed = self._on_monitoring_change(inquiry, was_in_review, event) or changed
        return changed

    def _new_inquiry(self, snapshot: InquirySnapshot, status: states.Status) -> _InquiryRow:
        user_type = self.config.user_type_for_template(snapshot.template_id)
        return _InquiryRow(
            id=None, inquiry_id=snapshot.inquiry_id, template_id=snapshot.template_id,
            user_type=user_type.name if user_type else UNKNOWN_USER_TYPE,
            level=user_type.level if user_type else None, status=status.value,
        )

    def _link_contact(self, inquiry: _InquiryRow, snapshot: InquirySnapshot) -> None:
        """Attach the inquiry to its contact: by our opaque reference id first (set at onboarding),
        else by the email in the payload, creating that contact when it is new."""
        if inquiry.contact_id is not None or inquiry.contact is not None:
            return  # linked before, or earlier in this batch
        contact = self.contacts.get(f"ref:{snapshot.reference_id}") if snapshot.reference_id else None
        email = emails.normalize(snapshot.email)
        if contact is None and email is not None:
            contact = self.contacts.get(f"email:{email}")
            if contact is None:
                # a concurrent first insert of this email fails at commit; ingest_many() retries
                contact = self.contacts[f"email:{email}"] = _ContactRow(None, email, snapshot.first_name)
                self.new_contacts.append(contact)
            elif snapshot.first_name and not contact.first_name:
                contact.first_name, contact.renamed = snapshot.first_name, True
        if contact is not None:
            inquiry.contact, inquiry.changed = contact, True

    def _on_status_change(self, inquiry: _InquiryRow, previous: states.Status | None, event: PersonaEvent) -> None:
        self.audit_entries.append(("inquiry.status", inquiry.inquiry_id, {
            "event_id": event.event_id, "from": previous.value if previous else None,
            "to": inquiry.status, "user_type": inquiry.user_type,
        }))
        self._enqueue_sync(inquiry)
        # Unlike the CRM sync, each status change is its own n8n event (an email), keyed on the new
        # status and the time of the event that decided it: never the same twice for one inquiry.
        # An approval that a newer monitoring match already questions sends no welcome.
        payload = None if inquiry.under_monitoring_review else notify.status_change_payload(
            inquiry.inquiry_id, inquiry.status, occurred_at=event.created_at)
        if payload is not None:
            self._enqueue(queue.N8N_EVENT, inquiry.inquiry_id, payload)

    def _enqueue_sync(self, inquiry: _InquiryRow) -> None:
        # The job reads the newest state when it runs, so one queued sync per inquiry is enough.
        if not inquiry.sync_waiting:
            inquiry.sync_waiting = True
            self._enqueue(queue.CRM_SYNC, inquiry.inquiry_id, {"inquiry_id": inquiry.inquiry_id})
            self.crm_rows.append((self.job_rows[-1], inquiry))

    def _enqueue(self, kind: str, inquiry_id: str, payload: dict[str, Any]) -> None:
        self.job_rows.append(queue.job_row(kind, inquiry_id=inquiry_id, payload=payload,
                                           max_attempts=self.config.max_attempts, now=self.now))

    # writes: one statement per table, parents first, the audit head last
    def _write(self, connection: Connection) -> None:
        now = self.now
        if self.new_contacts:
            rows = [{"email": c.email, "first_name": c.first_name, "created_at": now, "updated_at": now}
                    for c in self.new_contacts]
            for contact, (contact_id,) in zip(self.new_contacts, connection.execute(_INSERT_CONTACTS, rows)):
                contact.id = contact_id
        renamed = [{"b_id": c.id, "b_first_name": c.first_name, "b_now": now}
                   for c in set(self.contacts.values()) if c.renamed and c.id is not None]
        changed = [i for i in self.inquiries.values() if i.changed or i.id is None]
        for inquiry in changed:
            if inquiry.contact is not None:
                inquiry.contact_id = inquiry.contact.id
        for row, inquiry in self.crm_rows:
            row["contact_key"] = queue.contact_key(inquiry.contact_id, inquiry.inquiry_id)
        new = [_inquiry_values(i, now) for i in changed if i.id is None]
        updates = [{"b_id": i.id, "b_contact_id": i.contact_id, "b_reference_id": i.reference_id,
                    "b_status": i.status, "b_decided_at": i.decided_at, "b_decided_by": i.decided_by,
                    "b_redacted_at": i.redacted_at, "b_monitoring_kind": i.monitoring_kind,
                    "b_monitoring_report_id": i.monitoring_report_id, "b_monitoring_since": i.monitoring_since,
                    "b_monitoring_event_at": i.monitoring_event_at, "b_now": now}
                   for i in changed if i.id is not None]
        with pipelined(connection):
            if renamed:
                _NAME_CONTACTS.run(connection, renamed)
            if new:
                _INSERT_INQUIRIES.run(connection, new)
            if updates:
                _UPDATE_INQUIRIES.run(connection, updates)
            if self.applied_before:
                _MARK_APPLIED.run(connection, [{"b_event_id": event_id, "b_applied": True}
                                          for event_id in self.applied_before])
            queue.add_many(connection, self.job_rows)
            if self.job_rows:  # delivered at COMMIT, so a worker never wakes for a job it cannot see
                queue.wake_workers(connection)
            if self.event_rows:
                _INSERT_EVENTS.run(connection, self.event_rows)
            # The global audit lock last, and with the writes rather than in a round trip of its own.
            hold_audit_head = audit.send_head_lock(connection) if self.audit_entries else None
        if hold_audit_head is not None:
            hold_audit_head()
            audit.append_many(connection, self.audit_entries, at=now)


def _inquiry_values(inquiry: _InquiryRow, now: datetime) -> dict[str, Any]:
    return {
        "inquiry_id": inquiry.inquiry_id, "contact_id": inquiry.contact_id, "reference_id": inquiry.reference_id,
        "template_id": inquiry.template_id, "user_type": inquiry.user_type, "level": inquiry.level,
        "status": inquiry.status, "decided_at": inquiry.decided_at, "decided_by": inquiry.decided_by,
        "redacted_at": inquiry.redacted_at, "monitoring_kind": inquiry.monitoring_kind,
        "monitoring_report_id": inquiry.monitoring_report_id, "monitoring_since": inquiry.monitoring_since,
        "monitoring_event_at": inquiry.monitoring_event_at, "created_at": now, "updated_at": now,
    }


def _is_monitoring_report(event: PersonaEvent) -> bool:
    return event.related_inquiry_id is not None and monitoring.kind_of(event.name) is not None
