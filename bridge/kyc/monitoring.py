"""Continuous monitoring: a watchlist, PEP or adverse-media hit puts an approved person back into review.

Persona re-runs these reports on approved people and sends `report/<kind>.ready` (with
`has-match`), `report/<kind>.matched` and `report/<kind>.dismissed` events whose payload names the
inquiry. A match is recorded on the inquiry whatever its status; it counts while it is newer than
the inquiry's deciding event and that event was an approval. So a dismissal of that report, or a
new approval (a newer deciding event), clears it, and events arriving out of order change nothing
they should not: the newest report event per inquiry wins, as the newest inquiry event does. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bridge.kyc.states import Status

KINDS = ("watchlist", "politically-exposed-person", "adverse-media")
EVENT_NAMES = tuple(f"report/{kind}.{action}" for kind in KINDS for action in ("ready", "matched", "dismissed"))
MATCH, CLEAR = "match", "clear"


@dataclass(frozen=True)
class Monitoring:
    kind: str | None = None  # the report kind of the match in force; None when there is none
    report_id: str | None = None
    since: datetime | None = None  # created-at of the event that reported the match
    event_at: datetime | None = None  # created-at of the newest report event applied (the ordering key)


def kind_of(event_name: str) -> str | None:
    """`report/watchlist.matched` → `watchlist`; None for anything that is no monitoring report."""
    if not event_name.startswith("report/") or "." not in event_name:
        return None
    kind = event_name[len("report/"):].rsplit(".", 1)[0]
    return kind if kind in KINDS else None


def verdict(event_name: str, has_match: bool | None) -> str | None:
    """MATCH, CLEAR, or None for a report event that says nothing (no match, an error)."""
    if kind_of(event_name) is None:
        return None
    action = event_name.rsplit(".", 1)[1]
    if action == "matched" or (action == "ready" and has_match is True):
        return MATCH
    return CLEAR if action == "dismissed" else None


def apply(current: Monitoring, event_name: str, has_match: bool | None, report_id: str | None,
          at: datetime) -> Monitoring | None:
    """The inquiry's monitoring after a report event, or None when the event changes nothing
    (no verdict, older than what was applied, or a dismissal of another report)."""
    found = verdict(event_name, has_match)
    if found is None or (current.event_at is not None and at <= current.event_at):
        return None
    if found == MATCH:
        return Monitoring(kind_of(event_name), report_id, at, at)
    if current.kind is not None and current.report_id not in (None, report_id):
        return None  # dismissing another report leaves this match standing
    return Monitoring(None, None, None, at)


def in_force(monitoring: Monitoring, status: str, decided_at: datetime | None) -> bool:
    """Whether a match holds the person in review: it came after the approval it questions."""
    return (monitoring.kind is not None and status == Status.APPROVED.value and monitoring.since is not None
            and (decided_at is None or monitoring.since > decided_at))


def effective_status(monitoring: Monitoring, status: str, decided_at: datetime | None) -> str:
    """The status the person is shown, gated on and tagged with."""
    return Status.NEEDS_REVIEW.value if in_force(monitoring, status, decided_at) else status


class InquiryLike(Protocol):
    status: str
    decided_at: datetime | None
    monitoring_kind: str | None
    monitoring_report_id: str | None
    monitoring_since: datetime | None
    monitoring_event_at: datetime | None


def of(inquiry: InquiryLike) -> Monitoring:
    """The monitoring stored on an inquiry row (the model, or intake's batch row)."""
    return Monitoring(inquiry.monitoring_kind, inquiry.monitoring_report_id, inquiry.monitoring_since,
                      inquiry.monitoring_event_at)


def holds_in_review(inquiry: InquiryLike) -> bool:
    return in_force(of(inquiry), inquiry.status, inquiry.decided_at)


def status_shown(inquiry: InquiryLike) -> str:
    """The inquiry's status as the person is gated on, tagged with and told: needs_review while a
    match holds an approval in review."""
    return effective_status(of(inquiry), inquiry.status, inquiry.decided_at)
