"""The review SLA: how long a case in manual review may wait before it is overdue. Pure: no I/O.

A case waits from the moment it entered review (the time of the event that put the inquiry into
`needs_review`, as the admin view counts it); it is overdue once it has waited longer than its
level's target (`[review] target_hours`). A case whose level is unknown (a template no user type
names) gets the strictest target. The same inquiry entering review again later (a new deciding
event) is a new case, with a clock and an overdue alert of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

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
    """When a case in review entered it: the deciding event's time (the row's last change when no
    event decided it). The store's SQL twin is bridge.outbox.review_sla.WAITING_SINCE."""
    return decided_at or updated_at
