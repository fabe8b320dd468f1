"""A person's KYC standing across all their inquiries. Pure: no I/O.

The one rule for "which of a person's inquiries speaks for them", used by
GET /api/v1/contacts/<email>/kyc (gating) and by the FluentCRM sync (the person's status tag),
so the tags always say what the API says: an approval that a continuous-monitoring match holds in
review wins (the newest match: bridge.kyc.monitoring); then an approval (the highest level, then
the newest); without one, the newest inquiry (by its deciding event's time, else its creation).

A consent withdrawal ends the person's standing: the KYC tags are taken away and Persona is asked
to redact, so no site may keep treating them as verified. While their consent is withdrawn no
inquiry speaks for them (the lookups answer `not_started`, with `consent_withdrawn`); after a new
consent only inquiries created from then on do (`since`): consenting and verifying again restores
it, an old approval never comes back on its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from bridge.kyc import monitoring
from bridge.kyc.states import Status

LEVEL_RANK = {"basic": 1, "enhanced": 2}


class InquiryLike(monitoring.InquiryLike, Protocol):
    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def level(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...


I = TypeVar("I", bound=InquiryLike)  # noqa: E741 - reads as "an inquiry" in the signatures below


def speaking_inquiry(inquiries: Sequence[I], *, withdrawn: bool = False, since: datetime | None = None) -> I | None:
    """The inquiry whose status is the person's status; None when there is none. `withdrawn`: the
    person's consent is withdrawn (none speaks); `since`: their new consent after a withdrawal
    (inquiries created before it no longer speak)."""
    if withdrawn:
        return None
    if since is not None:
        inquiries = [i for i in inquiries if i.created_at >= since]
    if not inquiries:
        return None
    approved = [i for i in inquiries if i.status == Status.APPROVED.value]
    held = [i for i in approved if monitoring.holds_in_review(i)]
    if held:
        return max(held, key=lambda i: (i.monitoring_since, i.id))
    if approved:
        return max(approved, key=lambda i: (LEVEL_RANK.get(i.level or "", 0), i.decided_at or i.created_at))
    return max(inquiries, key=lambda i: (i.decided_at or i.created_at, i.id))
