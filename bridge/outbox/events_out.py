"""The thin KYC event the worker POSTs to n8n (contract version 1). Pure: no I/O.

The contract is n8n-flows/event.schema.json, documented in n8n-flows/README.md. An event carries
ids, the status, the user type, the person's email and first name, and links; never document,
selfie or Persona payload data. Its id is stable per (inquiry, status) — per reminder window for
`kyc.stalled`, per notice window for `kyc.renewal_due`, per link for `kyc.link_requested`, per
review case for `kyc.review_overdue` — so a flow can drop repeats.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bridge.kyc.states import Status

VERSION = 1
ID_PREFIX = "kev_"

APPROVED, DECLINED, FAILED = "kyc.approved", "kyc.declined", "kyc.failed"
NEEDS_REVIEW, EXPIRED, STALLED, LINK_REQUESTED = "kyc.needs_review", "kyc.expired", "kyc.stalled", "kyc.link_requested"
MONITORING_MATCH = "kyc.monitoring_match"  # for compliance only: never an email to the person
RENEWAL_DUE = "kyc.renewal_due"  # an approval lapses soon: verify again (bridge/outbox/renew.py)
REVIEW_OVERDUE = "kyc.review_overdue"  # for compliance only: a review case passed its target
TYPES = (APPROVED, DECLINED, FAILED, NEEDS_REVIEW, EXPIRED, STALLED, LINK_REQUESTED, MONITORING_MATCH, RENEWAL_DUE,
         REVIEW_OVERDUE)

# Status changes that become events; the others (created, pending, completed) send nothing.
TYPE_FOR_STATUS = {
    Status.APPROVED: APPROVED,
    Status.DECLINED: DECLINED,
    Status.FAILED: FAILED,
    Status.NEEDS_REVIEW: NEEDS_REVIEW,
    Status.EXPIRED: EXPIRED,
}
# Events whose email needs a fresh signed verification link (retry, resume, first start).
WITH_VERIFY_LINK = frozenset({DECLINED, FAILED, EXPIRED, STALLED, LINK_REQUESTED, RENEWAL_DUE})
# Events that still matter without the person's email (they go to the compliance address).
WITHOUT_EMAIL_OK = frozenset({NEEDS_REVIEW, MONITORING_MATCH, REVIEW_OVERDUE})


def type_for_status(status: str) -> str | None:
    try:
        return TYPE_FOR_STATUS.get(Status(status))
    except ValueError:
        return None


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stable_id(*parts: str) -> str:
    digest = hashlib.sha256("|".join(("kyc-bridge.event", str(VERSION), *parts)).encode()).hexdigest()
    return ID_PREFIX + digest[:32]


def status_event_id(inquiry_id: str, status: str) -> str:
    """The same (inquiry, status) always gets the same id, whatever retries or replays happen."""
    return _stable_id("status", inquiry_id, status)


def stalled_event_id(contact_id: int, user_type: str, anchor_at: datetime, window_hours: int) -> str:
    return _stable_id("stalled", str(contact_id), user_type, iso(anchor_at), str(window_hours))


def monitoring_event_id(inquiry_id: str, report_id: str) -> str:
    """One event per (inquiry, report): a report re-sent or replayed is the same alert."""
    return _stable_id("monitoring", inquiry_id, report_id)


def renewal_event_id(inquiry_id: str, deadline_at: datetime, window_days: int) -> str:
    """One event per (approval, deadline, notice window)."""
    return _stable_id("renewal", inquiry_id, iso(deadline_at), str(window_days))


def review_overdue_event_id(inquiry_id: str, since: datetime) -> str:
    """One event per review case: the inquiry and the time it entered review."""
    return _stable_id("overdue", inquiry_id, iso(since))


def link_event_id(link_key: str) -> str:
    return _stable_id("link", link_key)


def dashboard_link(dashboard_url: str, inquiry_id: str | None) -> str | None:
    return f"{dashboard_url.rstrip('/')}/{inquiry_id}" if inquiry_id else None


@dataclass(frozen=True)
class EventFacts:
    """Everything an event says, gathered by the domain (bridge.outbox.notify)."""

    event_id: str
    type: str
    occurred_at: datetime
    email: str | None
    first_name: str | None
    inquiry_id: str | None
    status: str
    user_type: str
    level: str | None
    welcome_variant: str
    verify_url: str | None
    dashboard_url: str | None
    review_due_at: datetime | None = None
    monitoring: tuple[str, str] | None = None  # (report kind, report id) of a kyc.monitoring_match
    # (deadline, whole days left) of a kyc.renewal_due, and of the kyc.expired of a lapsed approval
    renewal: tuple[datetime, int] | None = None


def build(facts: EventFacts) -> dict[str, Any]:
    """The JSON object sent to n8n (key order is part of what gets signed, so it is fixed here)."""
    if facts.type not in TYPES:
        raise ValueError(f"unknown event type {facts.type!r}")
    event = {
        "version": VERSION,
        "id": facts.event_id,
        "type": facts.type,
        "occurred_at": iso(facts.occurred_at),
        "contact": {"email": facts.email, "first_name": facts.first_name},
        "inquiry": {"id": facts.inquiry_id, "status": facts.status, "user_type": facts.user_type,
                    "level": facts.level},
        "links": {"verify": facts.verify_url, "dashboard": facts.dashboard_url},
        "welcome_variant": facts.welcome_variant,
        "review_due_at": iso(facts.review_due_at) if facts.review_due_at else None,
    }
    if facts.monitoring is not None:
        event["monitoring"] = {"kind": facts.monitoring[0], "report_id": facts.monitoring[1]}
    if facts.renewal is not None:
        event["renewal"] = {"due_at": iso(facts.renewal[0]), "days_left": facts.renewal[1]}
    return event


def review_due_at(occurred_at: datetime, type_: str, target_hours: int) -> datetime | None:
    """When a review that starts with this event is due ([review] target_hours of its level)."""
    return occurred_at + timedelta(hours=target_hours) if type_ in (NEEDS_REVIEW, MONITORING_MATCH) else None


def summary(event: dict[str, Any]) -> str:
    """How logs and job results name an event: type, id and inquiry id only (no personal data)."""
    inquiry_id = (event.get("inquiry") or {}).get("id")
    return f"{event.get('type')} {event.get('id')}" + (f" for {inquiry_id}" if inquiry_id else "")
