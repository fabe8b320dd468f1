"""Renewals: an approval lapses `reverify_after_days` after it was decided. Pure: no I/O.

The one rule for "is this approval lapsed at time t", used by the person's standing
(bridge.kyc.standing: the KYC lookups and the FluentCRM tag plan), by the renewal pass
(bridge.outbox.renew: notices before the deadline, the lapse at it) and by the n8n events it
queues (bridge.outbox.notify: a notice or a lapse that no longer holds is not sent).

Days per user type come from `[user_types.<type>] reverify_after_days` (absent or 0: never).
The clock starts at the approval's deciding Persona event (`decided_at`, else the row's creation).
A lapsed approval still counts as an approval to rank it (a person whose only approvals lapsed is
shown `expired`); only a newer, live approval makes the person `approved` again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bridge.kyc.states import Status

DAY = timedelta(days=1)


class ApprovalLike(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def user_type(self) -> str: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...


def deadline(status: str, user_type: str, decided_at: datetime | None, days: Mapping[str, int]) -> datetime | None:
    """When an approval lapses; None for anything that is no approval, or a type without renewals."""
    after = days.get(user_type, 0)
    if status != Status.APPROVED.value or after <= 0 or decided_at is None:
        return None
    return decided_at + timedelta(days=after)


def lapsed_at(deadline_at: datetime | None, at: datetime) -> bool:
    """The rule: an approval is lapsed from its deadline on (the deadline itself included)."""
    return deadline_at is not None and at >= deadline_at


@dataclass(frozen=True)
class Policy:
    """The renewal rule at one moment: days per user type (absent = never) and `now`."""

    days: Mapping[str, int]
    now: datetime

    def deadline(self, inquiry: ApprovalLike) -> datetime | None:
        return deadline(inquiry.status, inquiry.user_type, inquiry.decided_at or inquiry.created_at, self.days)

    def lapsed(self, inquiry: ApprovalLike) -> bool:
        return lapsed_at(self.deadline(inquiry), self.now)


def is_lapsed(inquiry: ApprovalLike, policy: Policy | None) -> bool:
    """Whether `inquiry` is an approval past its deadline under `policy` (None: renewals not asked)."""
    return policy is not None and policy.lapsed(inquiry)


def notice_window(windows: tuple[int, ...], deadline_at: datetime, now: datetime) -> int | None:
    """The notice due at `now`: the smallest window (days before the deadline) already reached;
    None before the first window and from the deadline on (then the approval has lapsed). A window
    missed while nothing ran is not sent late once a smaller one is reached."""
    left = deadline_at - now
    if left <= timedelta(0):
        return None
    reached = [days for days in windows if left <= days * DAY]
    return min(reached) if reached else None


def days_left(deadline_at: datetime, at: datetime) -> int:
    """Whole days left before the deadline, rounded up (30 at exactly 30 days, 1 an hour before)."""
    return max(0, math.ceil((deadline_at - at) / DAY))
