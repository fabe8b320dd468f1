"""The KYC state of one inquiry, and how an event changes it. Pure: no I/O.

State is decided by the event's `created-at`: an event older than the one that decided the current
state never overwrites it, so duplicates and out-of-order deliveries converge on the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    NOT_STARTED = "not_started"
    CREATED = "created"
    PENDING = "pending"
    COMPLETED = "completed"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    EXPIRED = "expired"


# Lifecycle position; only breaks ties between events with the same created-at.
_RANK = {
    Status.CREATED: 1,
    Status.PENDING: 2,
    Status.EXPIRED: 3,
    Status.FAILED: 3,
    Status.COMPLETED: 4,
    Status.NEEDS_REVIEW: 5,
    Status.APPROVED: 6,
    Status.DECLINED: 6,
}

DECISIONS = frozenset({Status.APPROVED, Status.DECLINED, Status.NEEDS_REVIEW})

# Status implied by an event name, for bodies whose payload lacks a readable status.
_EVENT_STATUS = {
    "inquiry.created": Status.CREATED,
    "inquiry.started": Status.PENDING,
    "inquiry.completed": Status.COMPLETED,
    "inquiry.failed": Status.FAILED,
    "inquiry.expired": Status.EXPIRED,
    "inquiry.approved": Status.APPROVED,
    "inquiry.declined": Status.DECLINED,
    "inquiry.marked-for-review": Status.NEEDS_REVIEW,
}

REDACTED_EVENT = "inquiry.redacted"
# Every inquiry event the bridge acts on (reconcile asks Persona's event log for these).
INQUIRY_EVENTS = (*_EVENT_STATUS, REDACTED_EVENT)


def normalize_status(raw: str | None) -> Status | None:
    """Persona's status string (`needs-review` or `needs_review`, any case) as a Status."""
    if not raw:
        return None
    try:
        status = Status(raw.strip().lower().replace("-", "_"))
    except ValueError:
        return None
    return None if status is Status.NOT_STARTED else status


def status_of_event(event_name: str, payload_status: str | None) -> Status | None:
    """The inquiry status an event reports; None when it reports none (redaction, unknown)."""
    if event_name == REDACTED_EVENT or not event_name.startswith("inquiry."):
        return None
    return normalize_status(payload_status) or _EVENT_STATUS.get(event_name)


@dataclass(frozen=True)
class InquiryState:
    status: Status | None = None
    decided_at: datetime | None = None  # created-at of the event that set `status`
    decided_by: str | None = None  # that event's id


@dataclass(frozen=True)
class Transition:
    state: InquiryState
    applied: bool  # the event became the deciding one
    status_changed: bool


def _order_key(status: Status, at: datetime, event_id: str) -> tuple[datetime, int, str]:
    return (at, _RANK[status], event_id)


def apply(current: InquiryState, status: Status, at: datetime, event_id: str) -> Transition:
    """The state after an event reporting `status` at `at`; older events change nothing."""
    if current.status is not None and current.decided_at is not None and current.decided_by:
        if _order_key(status, at, event_id) <= _order_key(
            current.status, current.decided_at, current.decided_by
        ):
            return Transition(current, applied=False, status_changed=False)
    new = InquiryState(status=status, decided_at=at, decided_by=event_id)
    return Transition(new, applied=True, status_changed=new.status != current.status)
