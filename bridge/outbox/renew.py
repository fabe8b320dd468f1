"""The renewal pass: notices before an approval's deadline, and its lapse at the deadline.

For each person and user type with `reverify_after_days`, the approval that counts is their newest
approval of that type (an earlier one was renewed by it). The deadline and the rule are
bridge.kyc.renewal's. A run, at `now`:

- before the deadline, queues one `kyc.renewal_due` n8n event for the notice window reached
  (`[renewal] notice_days`, e.g. 30 and 7 days before): a row in `kyc_renewal_notices` whose unique
  key (approval, deadline, window) makes a second run, or two runs at once, skip it. A window
  missed while nothing ran is not sent late once a smaller one is reached. Only with n8n on (as
  `remind`: nothing is recorded that could not be sent) and for people who may still be emailed.
- from the deadline on, records the lapse once (`kyc_inquiries.lapsed_at`, claimed by an UPDATE
  that only one run wins): an `inquiry.lapsed` audit entry (ids only), a `crm.sync` job (FluentCRM
  gets the expired tag and loses the approved one) and a `kyc.expired` n8n event with a fresh link.

The person's status needs no run: GET /api/v1/contacts/<email>/kyc applies the rule at the time
asked. The pass brings FluentCRM and n8n along. Safe to run as often as you like.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit
from bridge.config import Config
from bridge.kyc import renewal
from bridge.kyc.states import Status
from bridge.outbox import events_out
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Contact, Inquiry, RenewalNotice


@dataclass(frozen=True)
class Due:
    contact_id: int
    inquiry_id: str  # the approval that lapses
    user_type: str
    deadline_at: datetime
    window_days: int | None  # None: the deadline has passed (a lapse to record)


@dataclass(frozen=True)
class Report:
    notices: int  # renewal notices queued by this run
    lapsed: int  # lapses recorded by this run
    already: int  # due, but this window was sent (or this lapse recorded) before


def current_approvals(session: Session, config: Config, now: datetime) -> list[tuple[Inquiry, datetime]]:
    """Each person's newest approval per user type with renewals, with its deadline, for those whose
    first notice window (or deadline) has come and whose lapse is not recorded yet. A type without
    renewals is never read."""
    policy = config.renewal_policy(now)
    lead = max(config.renewal.notice_days, default=0)
    decided = func.coalesce(Inquiry.decided_at, Inquiry.created_at)
    found: list[tuple[Inquiry, datetime]] = []
    for user_type, days in sorted(policy.days.items()):
        approved = (Inquiry.status == Status.APPROVED.value) & (Inquiry.user_type == user_type) \
            & Inquiry.contact_id.is_not(None)
        newest = select(Inquiry.contact_id, func.max(decided).label("at")).where(approved) \
            .group_by(Inquiry.contact_id).subquery()
        rows = session.scalars(
            select(Inquiry).join(newest, (Inquiry.contact_id == newest.c.contact_id) & (decided == newest.c.at))
            .where(approved, Inquiry.lapsed_at.is_(None), decided <= now - renewal.DAY * (days - lead))
            .order_by(Inquiry.contact_id, Inquiry.id)).all()
        # Two approvals decided at the same instant: the later row speaks.
        for inquiry in {row.contact_id: row for row in rows}.values():
            deadline_at = policy.deadline(inquiry)
            if deadline_at is not None:
                found.append((inquiry, deadline_at))
    return found


def find(session: Session, config: Config, *, now: datetime) -> list[Due]:
    """Notices and lapses due at `now` (sent or recorded before, or not)."""
    due: list[Due] = []
    for inquiry, deadline_at in current_approvals(session, config, now):
        if renewal.lapsed_at(deadline_at, now):
            due.append(Due(inquiry.contact_id or 0, inquiry.inquiry_id, inquiry.user_type, deadline_at, None))
            continue
        window = renewal.notice_window(config.renewal.notice_days, deadline_at, now)
        if window is not None:
            due.append(Due(inquiry.contact_id or 0, inquiry.inquiry_id, inquiry.user_type, deadline_at, window))
    return due


def still_due(session: Session, config: Config, inquiry_id: str, deadline_at: datetime, now: datetime) -> bool:
    """Checked when a notice or a lapse event is about to be sent: the approval is still the person's
    newest of its type and its deadline is the same (no renewal since, no change of policy)."""
    inquiry = session.scalars(select(Inquiry).where(Inquiry.inquiry_id == inquiry_id)).one_or_none()
    if inquiry is None or inquiry.contact_id is None or config.renewal_policy(now).deadline(inquiry) != deadline_at:
        return False
    decided = func.coalesce(Inquiry.decided_at, Inquiry.created_at)
    newer = session.scalar(select(Inquiry.id).where(
        Inquiry.contact_id == inquiry.contact_id, Inquiry.user_type == inquiry.user_type,
        Inquiry.status == Status.APPROVED.value, Inquiry.id != inquiry.id,
        decided > (inquiry.decided_at or inquiry.created_at)).limit(1))
    return newer is None


def _reachable(session: Session, contact_id: int) -> bool:
    contact = session.get(Contact, contact_id)
    return contact is not None and contact.email is not None and contact.consent_withdrawn_at is None


def run(sessions: sessionmaker[Session], config: Config, *, now: datetime, notices: bool = True,
        dry_run: bool = False) -> Report:
    """Queue the notices and record the lapses due now, each in its own transaction. `notices=False`
    (n8n off): lapses only."""
    if not config.renewals_on:
        return Report(0, 0, 0)
    with transaction(sessions) as session:
        due = find(session, config, now=now)
        fresh = [item for item in due if not _done_before(session, item)
                 and (item.window_days is None or (notices and _reachable(session, item.contact_id)))]
    if dry_run:
        return Report(sum(1 for i in fresh if i.window_days is not None), sum(1 for i in fresh if i.window_days is None),
                      len(due) - len(fresh))
    sent = lapsed = 0
    for item in fresh:
        if item.window_days is None:
            lapsed += _record_lapse(sessions, config, item, now)
        else:
            sent += _queue_notice(sessions, config, item, now)
    return Report(sent, lapsed, len(due) - sent - lapsed)


def _done_before(session: Session, item: Due) -> bool:
    if item.window_days is None:
        return session.scalar(select(Inquiry.lapsed_at).where(Inquiry.inquiry_id == item.inquiry_id)) is not None
    return session.scalar(select(RenewalNotice.id).where(
        RenewalNotice.inquiry_id == item.inquiry_id, RenewalNotice.deadline_at == item.deadline_at,
        RenewalNotice.window_days == item.window_days)) is not None


def _queue_notice(sessions: sessionmaker[Session], config: Config, item: Due, now: datetime) -> int:
    try:
        with transaction(sessions) as session:
            notice = RenewalNotice(contact_id=item.contact_id, inquiry_id=item.inquiry_id, user_type=item.user_type,
                                   deadline_at=item.deadline_at, window_days=item.window_days, created_at=now)
            session.add(notice)
            session.flush()  # the unique window key: a concurrent run that got here first wins
            queue.enqueue(session, queue.N8N_EVENT, inquiry_id=item.inquiry_id,
                          payload={"type": events_out.RENEWAL_DUE, "notice_id": notice.id},
                          max_attempts=config.max_attempts, now=now)
            audit.append(session, "renewal.queued", item.inquiry_id,
                         {"user_type": item.user_type, "count": item.window_days}, at=now)
        return 1
    except IntegrityError:
        return 0


def _record_lapse(sessions: sessionmaker[Session], config: Config, item: Due, now: datetime) -> int:
    with transaction(sessions) as session:
        claimed = session.execute(update(Inquiry).where(
            Inquiry.inquiry_id == item.inquiry_id, Inquiry.lapsed_at.is_(None)).values(lapsed_at=item.deadline_at))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return 0  # a concurrent run recorded it
        audit.append(session, "inquiry.lapsed", item.inquiry_id,
                     {"from": Status.APPROVED.value, "to": Status.EXPIRED.value, "user_type": item.user_type,
                      "reason": "reverify_after_days"}, at=now)
        queue.enqueue(session, queue.CRM_SYNC, inquiry_id=item.inquiry_id, payload={"inquiry_id": item.inquiry_id},
                      max_attempts=config.max_attempts, now=now, coalesce=True,
                      contact_key=queue.contact_key(item.contact_id, item.inquiry_id))
        queue.enqueue(session, queue.N8N_EVENT, inquiry_id=item.inquiry_id,
                      payload=lapse_payload(item.inquiry_id, item.deadline_at),
                      max_attempts=config.max_attempts, now=now)
    return 1


def lapse_payload(inquiry_id: str, deadline_at: datetime) -> dict[str, object]:
    """The `n8n.event` job of a lapse: the `kyc.expired` event of the approval, marked as a renewal."""
    return {"type": events_out.EXPIRED, "inquiry_id": inquiry_id, "status": Status.EXPIRED.value,
            "occurred_at": events_out.iso(deadline_at), "lapsed": True}


def summary(report: Report, *, notices: bool) -> str:
    """One line for the command and the scheduled run (ids and counts only)."""
    sent = f"{report.notices} renewal notice(s) queued" if notices else "renewal notices off (n8n events off)"
    return f"{sent}; {report.lapsed} approval(s) lapsed; {report.already} already done"
