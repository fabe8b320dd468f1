"""The review SLA's scheduled pass: one `kyc.review_overdue` event (to compliance) per review case
that went past its target.

A review case is an inquiry in `needs_review`, or a live approval a monitoring match holds in
review, since a given time (bridge.kyc.review); its target is `[review] target_hours` of its level.
A run finds the cases past their target that were not alerted yet and, for each, in one
transaction: marks the inquiry (`review_overdue_for` = the time the case entered review, a
conditional UPDATE, so two runs at once alert once), queues the `n8n.event` job and appends a
`review.overdue` audit entry. The same inquiry entering review again
later is a new case with its own time, so it may go overdue (and be alerted) again.

Runs on `[schedule] review_overdue_every` in `serve`/`worker` (bridge.outbox.upkeep). The SQL twins
of the rules (in review, since when, the status an admin sees, overdue) live here too: the admin
API, the stats and /metrics use them (bridge.queries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit
from bridge.config import Config
from bridge.kyc import renewal, review
from bridge.kyc.states import Status
from bridge.outbox import notify
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.models import Inquiry

BATCH = 500  # cases looked at per run at most; the next run takes the rest

# The SQL twins of the pure rules: an approval a match holds in review (bridge.kyc.monitoring.in_force);
# since when a review case waits (bridge.kyc.review.case_since: the match, else the deciding event).
MATCH_HOLDS = ((Inquiry.status == Status.APPROVED.value) & Inquiry.monitoring_kind.is_not(None)
               & Inquiry.monitoring_since.is_not(None)
               & (Inquiry.decided_at.is_(None) | (Inquiry.monitoring_since > Inquiry.decided_at)))
WAITING_SINCE = case((MATCH_HOLDS, Inquiry.monitoring_since),
                     else_=func.coalesce(Inquiry.decided_at, Inquiry.updated_at))


def lapsed(lapse: renewal.Policy | None) -> Any:
    """SQL twin of bridge.kyc.renewal.is_lapsed: an approval past its renewal deadline; None when
    no user type has renewals (nothing lapses)."""
    if lapse is None or not lapse.days:
        return None
    started = func.coalesce(Inquiry.decided_at, Inquiry.created_at)
    return (Inquiry.status == Status.APPROVED.value) & or_(*[
        (Inquiry.user_type == user_type) & (started <= lapse.now - timedelta(days=days))
        for user_type, days in lapse.days.items()])


def in_review(lapse: renewal.Policy | None = None) -> Any:
    """SQL twin of bridge.kyc.review.case_since(...) is not None."""
    held = MATCH_HOLDS if (expired := lapsed(lapse)) is None else MATCH_HOLDS & ~expired
    return (Inquiry.status == review.NEEDS_REVIEW) | held


def shown_status(lapse: renewal.Policy | None = None) -> Any:
    """SQL twin of bridge.kyc.standing.status_shown: the status an admin sees."""
    expired = lapsed(lapse)
    whens = [] if expired is None else [(expired, Status.EXPIRED.value)]
    return case(*whens, (MATCH_HOLDS, review.NEEDS_REVIEW), else_=Inquiry.status)


def overdue(targets: Mapping[str, int], now: datetime, lapse: renewal.Policy | None = None) -> Any:
    """SQL condition: an inquiry in review past its level's target at `now`."""
    levels = list(targets)
    per_level = [(Inquiry.level == level) & (WAITING_SINCE < now - timedelta(hours=targets[level]))
                 for level in levels]
    unknown_level = (Inquiry.level.is_(None) | Inquiry.level.not_in(levels)) & (
        WAITING_SINCE < now - timedelta(hours=review.target_hours(targets, None)))
    return in_review(lapse) & or_(*per_level, unknown_level)


def _not_alerted() -> Any:
    return Inquiry.review_overdue_for.is_(None) | (Inquiry.review_overdue_for != WAITING_SINCE)


@dataclass(frozen=True)
class Report:
    queued: int  # kyc.review_overdue events queued by this run
    overdue: int  # cases overdue now (alerted before or by this run)


def run(sessions: sessionmaker[Session], config: Config, *, now: datetime) -> Report:
    targets, lapse = config.review.target_hours, config.renewal_policy(now)
    with transaction(sessions) as session:
        late = overdue(targets, now, lapse)
        total = session.scalar(select(func.count()).select_from(Inquiry).where(late)) or 0
        cases = session.execute(select(Inquiry.id, Inquiry.inquiry_id, Inquiry.level, WAITING_SINCE)
                                .where(late, _not_alerted()).order_by(WAITING_SINCE, Inquiry.id).limit(BATCH)).all()
    queued = 0
    for row_id, inquiry_id, level, since in cases:
        with transaction(sessions) as session:
            if _alert(session, config, row_id, inquiry_id, level, since, now=now, lapse=lapse):
                queued += 1
    return Report(queued, total)


def _alert(session: Session, config: Config, row_id: int, inquiry_id: str, level: str | None, since: datetime,
           *, now: datetime, lapse: renewal.Policy | None) -> bool:
    # Only if it is still the same case and nobody alerted it meanwhile; updated_at stays: marking
    # the alert is no change of the inquiry (and updated_at may be the case's waiting time).
    marked = session.execute(
        update(Inquiry).where(Inquiry.id == row_id, in_review(lapse), WAITING_SINCE == since,
                              or_(Inquiry.review_overdue_for.is_(None), Inquiry.review_overdue_for != since))
        .values(review_overdue_for=since, updated_at=Inquiry.updated_at)
        .execution_options(synchronize_session=False))
    if marked.rowcount != 1:
        return False
    queue.enqueue(session, queue.N8N_EVENT, inquiry_id=inquiry_id,
                  payload=notify.review_overdue_payload(inquiry_id, since),
                  max_attempts=config.max_attempts, now=now)
    audit.append(session, "review.overdue", inquiry_id,
                 {"level": level, "count": config.review.target_for(level)}, at=now)
    return True
