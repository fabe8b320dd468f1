"""A person's KYC standing across all their inquiries. Pure: no I/O.

The one rule for "which of a person's inquiries speaks for them", used by
GET /api/v1/contacts/<email>/kyc (gating) and by the FluentCRM sync (the person's status tag),
so the tags always say what the API says: an approval that a continuous-monitoring match holds in
review wins (the newest match: bridge.kyc.monitoring); then a live approval (the highest level,
then the newest); then an approval past its renewal deadline (bridge.kyc.renewal: the person is
shown `expired` until a newer approval); without one, the newest inquiry (by its deciding event's
time, else its creation).

`lapse` is the renewal rule at the moment asked (None: approvals never lapse).

A consent withdrawal ends the person's standing: the KYC tags are taken away and Persona is asked
to redact, so no site may keep treating them as verified. While their consent is withdrawn no
inquiry speaks for them (the lookups answer `not_started`, with `consent_withdrawn`); after a new
consent only inquiries created from then on do (`since`): consenting and verifying again restores
it, an old approval never comes back on its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from bridge.kyc import monitoring, renewal
from bridge.kyc.states import Status

LEVEL_RANK = {"basic": 1, "enhanced": 2}


class InquiryLike(monitoring.InquiryLike, Protocol):
    @property
    def id(self) -> int: ...
    @property
    def user_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def level(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...


I = TypeVar("I", bound=InquiryLike)  # noqa: E741 - reads as "an inquiry" in the signatures below


def counts_since(inquiry: InquiryLike, since: datetime | None) -> bool:
    """Whether the inquiry may speak for the person after a new consent at `since` (None: they never
    withdrew): only inquiries created from then on do."""
    return since is None or inquiry.created_at >= since


def speaking_inquiry(inquiries: Sequence[I], lapse: renewal.Policy | None = None, *, withdrawn: bool = False,
                     since: datetime | None = None) -> I | None:
    """The inquiry whose status is the person's status; None when there is none. `withdrawn`: the
    person's consent is withdrawn (none speaks); `since`: their new consent after a withdrawal
    (inquiries created before it no longer speak)."""
    if withdrawn:
        return None
    inquiries = [i for i in inquiries if counts_since(i, since)]
    if not inquiries:
        return None
    approved = [i for i in inquiries if i.status == Status.APPROVED.value]
    live = [i for i in approved if not renewal.is_lapsed(i, lapse)]
    held = [i for i in live if monitoring.holds_in_review(i)]
    if held:
        return max(held, key=lambda i: (i.monitoring_since, i.id))
    if live:
        return max(live, key=lambda i: (LEVEL_RANK.get(i.level or "", 0), i.decided_at or i.created_at))
    if approved:  # every approval lapsed: the newest speaks, as `expired`
        return max(approved, key=lambda i: (i.decided_at or i.created_at, i.id))
    return max(inquiries, key=lambda i: (i.decided_at or i.created_at, i.id))


def in_monitoring_review(inquiry: InquiryLike, lapse: renewal.Policy | None = None) -> bool:
    """A monitoring match holds this (live) approval in review. A lapsed approval is expired."""
    return not renewal.is_lapsed(inquiry, lapse) and monitoring.holds_in_review(inquiry)


def status_shown(inquiry: InquiryLike, lapse: renewal.Policy | None = None) -> str:
    """The status the person is gated on, tagged with and told: `expired` once their approval is
    past its renewal deadline, `needs_review` while a monitoring match holds it, else the inquiry's."""
    if renewal.is_lapsed(inquiry, lapse):
        return Status.EXPIRED.value
    return monitoring.status_shown(inquiry)
