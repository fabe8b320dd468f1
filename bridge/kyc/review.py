"""The review SLA: how long a case in manual review may wait before it is overdue. Pure: no I/O.

A review case is an inquiry in `needs_review`, or a live approval a continuous-monitoring match
holds in review (bridge.kyc.standing: the person is shown `needs_review` until a dismissal, a new
approval, or the approval's renewal deadline). A case waits from the moment it entered review
(the time of the event that put the inquiry into `needs_review`, or of the match); it is overdue
once it has waited longer than its level's target (`[review] target_hours`). A case whose level is unknown (a template no user type
names) gets the strictest target. The same inquiry entering review again later (a new deciding
event) is a new case, with a clock and an overdue alert of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from bridge.kyc import renewal, standing

NEEDS_REVIEW = "needs_review"


def target_hours(targets: Mapping[str, int], level: str | None) -> int:
    """The target of a level; the strictest one for an unknown level."""
    if level in targets:
        return targets[level]  # type: ignore[index]
    return min(targets.values())


def due_at(since: datetime, hours: int) -> datetime:
    return since + timedelta(hours=hours)


def waiting(status: str, since: datetime | None, now: datetime, hours: int) -> tuple[float | None, bool]:
    """(hours waited, overdue) of a case in review; (None, False) for any other status."""
    if status != NEEDS_REVIEW or since is None:
        return None, False
    waited = (now - since).total_seconds() / 3600
    return round(waited, 2), waited > hours


def waiting_since(decided_at: datetime | None, updated_at: datetime) -> datetime:
    """When a `needs_review` inquiry entered review: the deciding event's time (the row's last
    change when no event decided it)."""
    return decided_at or updated_at


class InquiryLike(standing.InquiryLike):
    @property
    def updated_at(self) -> datetime: ...


def case_since(inquiry: InquiryLike, lapse: renewal.Policy | None = None) -> datetime | None:
    """When the inquiry's current review case began; None when it is in no review (an approval past
    its renewal deadline under `lapse` is expired, not in review). The store's SQL twins are
    bridge.outbox.review_sla.in_review and WAITING_SINCE."""
    if standing.in_monitoring_review(inquiry, lapse):
        return inquiry.monitoring_since
    if inquiry.status == NEEDS_REVIEW:
        return waiting_since(inquiry.decided_at, inquiry.updated_at)
    return None
