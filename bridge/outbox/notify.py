"""KYC events for n8n, domain side: enqueue `n8n.event` jobs, and turn a job into the event to send.

A job holds ids and the status only. When it runs, the worker asks `prepare` for the event: it
reads the newest store (the person's email and first name, consent), skips what must not be
sent, and issues the signed verification link the email needs. The event itself is built by the
pure `bridge.outbox.events_out`; the HTTP call is `bridge.sinks.n8n`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bridge.outbox import events_out, remind, renew
from bridge.consent import onboarding
from bridge.config import Config
from bridge.outbox.crm_sync import SKIPPED_PREFIX
from bridge.kyc import monitoring, renewal, retry, review, standing
from bridge.kyc.states import Status
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Contact, Inquiry, Reminder, RenewalNotice

def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def status_change_payload(inquiry_id: str, status: str, *, occurred_at: datetime) -> dict[str, Any] | None:
    """The `n8n.event` job payload for an inquiry's new status (approved, declined, failed, needs
    review, expired); None for statuses that send nothing."""
    type_ = events_out.type_for_status(status)
    if type_ is None:
        return None
    return {"type": type_, "inquiry_id": inquiry_id, "status": status, "occurred_at": events_out.iso(occurred_at)}


def monitoring_match_payload(inquiry_id: str, kind: str, report_id: str, *, occurred_at: datetime) -> dict[str, Any]:
    """The `n8n.event` job payload of a monitoring match that put an approved person into review."""
    return {"type": events_out.MONITORING_MATCH, "inquiry_id": inquiry_id, "kind": kind, "report_id": report_id,
            "occurred_at": events_out.iso(occurred_at)}


def review_overdue_payload(inquiry_id: str, since: datetime) -> dict[str, Any]:
    """The `n8n.event` job payload of a review case (an inquiry in review since `since`) that went
    past its target (bridge.outbox.review_sla queues it, once per case)."""
    return {"type": events_out.REVIEW_OVERDUE, "inquiry_id": inquiry_id, "since": events_out.iso(since)}


def request_link(session: Session, config: Config, *, contact_id: int, user_type: str, now: datetime,
                 key: str | None = None) -> None:
    """Queue a `kyc.link_requested` event: n8n emails the person a fresh verification link. A
    caller's `key` (e.g. an order) gives every request for it the same event id, so n8n sends once."""
    if user_type not in config.user_types:
        raise onboarding.OnboardingError("user_type", f"user_type must be one of {', '.join(config.user_types)}")
    queue.enqueue(session, queue.N8N_EVENT, inquiry_id=None,
                  payload={"type": events_out.LINK_REQUESTED, "contact_id": contact_id, "user_type": user_type,
                           "occurred_at": events_out.iso(now), "key": key or secrets.token_hex(12)},
                  max_attempts=config.max_attempts, now=now)


@dataclass(frozen=True)
class Prepared:
    event: dict[str, Any]
    summary: str  # type, event id, inquiry id: what results and logs may say


def prepare(sessions: sessionmaker[Session], config: Config, payload: dict[str, Any], *, secret_key: str,
            now: datetime, issue_links: bool = True) -> Prepared | str:
    """The event for an `n8n.event` job, or why nothing is sent ('skipped: …', ids only).
    `issue_links=False` (n8n not configured: a dry run) leaves the verify link out and writes nothing."""
    with transaction(sessions) as session:
        facts = _gather(session, config, payload, now)
    if isinstance(facts, str):
        return facts
    # The retry rule decides whether a "KYC issue" email carries a retry link; a link an admin
    # asked to resend, and the link of a renewal (due or lapsed), always go out.
    allowed = facts.type == events_out.LINK_REQUESTED or retry.may_retry(
        facts.status, config.retry_allowed, lapsed=facts.renewal is not None)
    if issue_links and allowed and facts.type in events_out.WITH_VERIFY_LINK and facts.email \
            and facts.user_type in config.user_types:
        link = onboarding.issue_link(sessions, config, secret_key=secret_key, email=facts.email,
                                     user_type=facts.user_type, first_name=None, now=now)
        facts = replace(facts, verify_url=link.url)
    event = events_out.build(facts)
    return Prepared(event, events_out.summary(event))


def _gather(session: Session, config: Config, payload: dict[str, Any], now: datetime) -> events_out.EventFacts | str:
    type_ = payload.get("type")
    if type_ == events_out.STALLED:
        return _stalled(session, config, int(payload["reminder_id"]), now)
    if type_ == events_out.LINK_REQUESTED:
        return _link_requested(session, config, payload, now)
    if type_ == events_out.RENEWAL_DUE:
        return _renewal_due(session, config, int(payload["notice_id"]), now)
    if type_ == events_out.EXPIRED and payload.get("lapsed"):
        return _lapsed(session, config, payload, now)
    if type_ == events_out.MONITORING_MATCH:
        return _monitoring_match(session, config, payload)
    if type_ == events_out.REVIEW_OVERDUE:
        return _review_overdue(session, config, payload, now)
    if type_ in events_out.TYPE_FOR_STATUS.values():
        return _status_change(session, config, payload)
    return f"{SKIPPED_PREFIX}: unknown event type {type_!r}"


def _person(contact: Contact | None, type_: str, what: str) -> tuple[str | None, str | None] | str:
    """(email, first name), or why the event must not be sent. Consent withdrawal stops every event,
    exactly as it stops the CRM sync (crm_sync.target)."""
    if contact is not None and contact.consent_withdrawn_at is not None:
        return f"{SKIPPED_PREFIX}: consent withdrawn"
    email = contact.email if contact is not None else None
    if email is None and type_ not in events_out.WITHOUT_EMAIL_OK:
        return f"{SKIPPED_PREFIX}: no email known for this {what}"
    return email, contact.first_name if contact is not None else None


def _status_change(session: Session, config: Config, payload: dict[str, Any]) -> events_out.EventFacts | str:
    type_, status, inquiry_id = payload["type"], payload["status"], payload["inquiry_id"]
    inquiry = session.scalars(select(Inquiry).where(Inquiry.inquiry_id == inquiry_id)).one_or_none()
    if inquiry is None:
        return f"{SKIPPED_PREFIX}: inquiry no longer stored"
    if inquiry.status != status:
        # A newer status was decided before this ran; its own event follows. No stale emails.
        return f"{SKIPPED_PREFIX}: superseded (the inquiry is now {inquiry.status})"
    contact = session.get(Contact, inquiry.contact_id) if inquiry.contact_id else None
    person = _person(contact, type_, "inquiry")
    if isinstance(person, str):
        return person
    if (type_ != events_out.NEEDS_REVIEW and contact is not None
            and not standing.counts_since(inquiry, contact.standing_since)):
        # Its status is no longer the person's (bridge/kyc/standing.py): no email to them about it.
        return f"{SKIPPED_PREFIX}: an inquiry from before the person's new consent"
    occurred_at = _parse_time(payload["occurred_at"])
    return events_out.EventFacts(
        event_id=events_out.status_event_id(inquiry_id, status), type=type_, occurred_at=occurred_at,
        email=person[0], first_name=person[1], inquiry_id=inquiry_id, status=status,
        user_type=inquiry.user_type, level=inquiry.level,
        welcome_variant=config.n8n.welcome_variant(inquiry.user_type), verify_url=None,
        dashboard_url=events_out.dashboard_link(config.dashboard_url, inquiry_id),
        review_due_at=events_out.review_due_at(occurred_at, type_, config.review.target_for(inquiry.level)),
    )


def _monitoring_match(session: Session, config: Config, payload: dict[str, Any]) -> events_out.EventFacts | str:
    inquiry_id, report_id = payload["inquiry_id"], payload["report_id"]
    inquiry = session.scalars(select(Inquiry).where(Inquiry.inquiry_id == inquiry_id)).one_or_none()
    if inquiry is None:
        return f"{SKIPPED_PREFIX}: inquiry no longer stored"
    if inquiry.monitoring_report_id != report_id or not monitoring.holds_in_review(inquiry):
        return f"{SKIPPED_PREFIX}: superseded (the match was dismissed or a newer decision was made)"
    contact = session.get(Contact, inquiry.contact_id) if inquiry.contact_id else None
    person = _person(contact, events_out.MONITORING_MATCH, "inquiry")
    if isinstance(person, str):
        return person
    occurred_at = _parse_time(payload["occurred_at"])
    return events_out.EventFacts(
        event_id=events_out.monitoring_event_id(inquiry_id, report_id), type=events_out.MONITORING_MATCH,
        occurred_at=occurred_at, email=person[0], first_name=person[1], inquiry_id=inquiry_id,
        status=Status.NEEDS_REVIEW.value, user_type=inquiry.user_type, level=inquiry.level,
        welcome_variant=config.n8n.welcome_variant(inquiry.user_type), verify_url=None,
        dashboard_url=events_out.dashboard_link(config.dashboard_url, inquiry_id),
        review_due_at=events_out.review_due_at(occurred_at, events_out.MONITORING_MATCH,
                                               config.review.target_for(inquiry.level)),
        monitoring=(payload["kind"], report_id),
    )


def _review_overdue(session: Session, config: Config, payload: dict[str, Any],
                    now: datetime) -> events_out.EventFacts | str:
    inquiry_id, since = payload["inquiry_id"], _parse_time(payload["since"])  # as events_out.iso writes it
    inquiry = session.scalars(select(Inquiry).where(Inquiry.inquiry_id == inquiry_id)).one_or_none()
    if inquiry is None:
        return f"{SKIPPED_PREFIX}: inquiry no longer stored"
    case_since = review.case_since(inquiry, config.renewal_policy(now))
    if case_since is None or events_out.iso(case_since) != payload["since"]:
        return f"{SKIPPED_PREFIX}: superseded (the review was decided, or the inquiry entered review again)"
    contact = session.get(Contact, inquiry.contact_id) if inquiry.contact_id else None
    person = _person(contact, events_out.REVIEW_OVERDUE, "inquiry")
    if isinstance(person, str):
        return person
    due = review.due_at(since, config.review.target_for(inquiry.level))
    return events_out.EventFacts(
        event_id=events_out.review_overdue_event_id(inquiry_id, since), type=events_out.REVIEW_OVERDUE,
        occurred_at=due, email=person[0], first_name=person[1], inquiry_id=inquiry_id,
        status=Status.NEEDS_REVIEW.value, user_type=inquiry.user_type, level=inquiry.level,
        welcome_variant=config.n8n.welcome_variant(inquiry.user_type), verify_url=None,
        dashboard_url=events_out.dashboard_link(config.dashboard_url, inquiry_id), review_due_at=due,
    )


def _stalled(session: Session, config: Config, reminder_id: int, now: datetime) -> events_out.EventFacts | str:
    reminder = session.get(Reminder, reminder_id)
    if reminder is None:
        return f"{SKIPPED_PREFIX}: reminder no longer stored"
    contact = session.get(Contact, reminder.contact_id)
    person = _person(contact, events_out.STALLED, "contact")
    if isinstance(person, str):
        return person
    if not remind.still_stalled(session, reminder.contact_id, reminder.user_type, reminder.anchor_at):
        return f"{SKIPPED_PREFIX}: no longer stalled (completed or started again since the reminder was queued)"
    inquiry = (session.scalars(select(Inquiry).where(Inquiry.inquiry_id == reminder.inquiry_id)).one_or_none()
               if reminder.inquiry_id else None)
    user_type = config.user_types.get(reminder.user_type)
    return events_out.EventFacts(
        event_id=events_out.stalled_event_id(reminder.contact_id, reminder.user_type, reminder.anchor_at,
                                             reminder.window_hours),
        type=events_out.STALLED, occurred_at=reminder.created_at, email=person[0], first_name=person[1],
        inquiry_id=inquiry.inquiry_id if inquiry else None,
        status=inquiry.status if inquiry else Status.NOT_STARTED.value, user_type=reminder.user_type,
        level=inquiry.level if inquiry else (user_type.level if user_type else None),
        welcome_variant=config.n8n.welcome_variant(reminder.user_type), verify_url=None,
        dashboard_url=events_out.dashboard_link(config.dashboard_url, inquiry.inquiry_id if inquiry else None),
    )


def _link_requested(session: Session, config: Config, payload: dict[str, Any],
                    now: datetime) -> events_out.EventFacts | str:
    contact = session.get(Contact, int(payload["contact_id"]))
    if contact is None:
        return f"{SKIPPED_PREFIX}: contact no longer stored"
    person = _person(contact, events_out.LINK_REQUESTED, "contact")
    if isinstance(person, str):
        return person
    user_type = payload["user_type"]
    standing = onboarding.kyc_status(session, person[0] or "", user_type, lapse=config.renewal_policy(now))
    configured = config.user_types.get(user_type)
    return events_out.EventFacts(
        event_id=events_out.link_event_id(payload["key"]), type=events_out.LINK_REQUESTED,
        occurred_at=_parse_time(payload["occurred_at"]), email=person[0], first_name=person[1], inquiry_id=None,
        status=standing.status, user_type=user_type,
        level=standing.level or (configured.level if configured else None),
        welcome_variant=config.n8n.welcome_variant(user_type), verify_url=None, dashboard_url=None,
    )


def _renewal_due(session: Session, config: Config, notice_id: int, now: datetime) -> events_out.EventFacts | str:
    """A notice before an approval's deadline; not sent once renewed, lapsed or the policy changed."""
    notice = session.get(RenewalNotice, notice_id)
    if notice is None:
        return f"{SKIPPED_PREFIX}: renewal notice no longer stored"
    person = _person(session.get(Contact, notice.contact_id), events_out.RENEWAL_DUE, "contact")
    if isinstance(person, str):
        return person
    if renewal.lapsed_at(notice.deadline_at, now) or not renew.still_due(
            session, config, notice.inquiry_id, notice.deadline_at, now):
        return f"{SKIPPED_PREFIX}: superseded (renewed, lapsed or the renewal policy changed since the notice)"
    inquiry = session.scalars(select(Inquiry).where(Inquiry.inquiry_id == notice.inquiry_id)).one()
    return events_out.EventFacts(
        event_id=events_out.renewal_event_id(notice.inquiry_id, notice.deadline_at, notice.window_days),
        type=events_out.RENEWAL_DUE, occurred_at=notice.created_at, email=person[0], first_name=person[1],
        inquiry_id=notice.inquiry_id, status=Status.APPROVED.value, user_type=inquiry.user_type, level=inquiry.level,
        welcome_variant=config.n8n.welcome_variant(inquiry.user_type), verify_url=None,
        dashboard_url=events_out.dashboard_link(config.dashboard_url, notice.inquiry_id),
        renewal=(notice.deadline_at, renewal.days_left(notice.deadline_at, notice.created_at)),
    )


def _lapsed(session: Session, config: Config, payload: dict[str, Any], now: datetime) -> events_out.EventFacts | str:
    """The `kyc.expired` event of an approval that passed its renewal deadline (bridge/outbox/renew.py)."""
    inquiry_id = payload["inquiry_id"]
    deadline_at = _parse_time(payload["occurred_at"])
    if not renew.still_due(session, config, inquiry_id, deadline_at, now):
        return f"{SKIPPED_PREFIX}: superseded (renewed, or the renewal policy changed since the lapse)"
    inquiry = session.scalars(select(Inquiry).where(Inquiry.inquiry_id == inquiry_id)).one()
    person = _person(session.get(Contact, inquiry.contact_id), events_out.EXPIRED, "inquiry")
    if isinstance(person, str):
        return person
    return events_out.EventFacts(
        event_id=events_out.status_event_id(inquiry_id, Status.EXPIRED.value), type=events_out.EXPIRED,
        occurred_at=deadline_at, email=person[0], first_name=person[1], inquiry_id=inquiry_id,
        status=Status.EXPIRED.value, user_type=inquiry.user_type, level=inquiry.level,
        welcome_variant=config.n8n.welcome_variant(inquiry.user_type), verify_url=None,
        dashboard_url=events_out.dashboard_link(config.dashboard_url, inquiry_id),
        renewal=(deadline_at, 0),
    )
