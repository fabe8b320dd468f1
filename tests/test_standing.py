"""The person's standing (bridge/kyc/standing.py), pure: which inquiry speaks for a person, and how
a consent withdrawal ends it until they consent and verify again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.kyc import standing

T0 = datetime.fromisoformat("2026-12-01T12:00:00+00:00")


@dataclass
class Inq:
    id: int
    status: str
    created_at: datetime
    level: str | None = "basic"
    decided_at: datetime | None = None
    monitoring_kind: str | None = None
    monitoring_report_id: str | None = None
    monitoring_since: datetime | None = None
    monitoring_event_at: datetime | None = None


def test_an_approval_speaks_over_a_newer_unfinished_inquiry() -> None:
    approved = Inq(1, "approved", T0, decided_at=T0)
    pending = Inq(2, "pending", T0 + timedelta(hours=1))
    assert standing.speaking_inquiry([approved, pending]) is approved
    assert standing.speaking_inquiry([]) is None


def test_while_consent_is_withdrawn_no_inquiry_speaks() -> None:
    approved = Inq(1, "approved", T0, decided_at=T0)
    assert standing.speaking_inquiry([approved], withdrawn=True) is None


def test_after_a_new_consent_only_inquiries_from_then_on_speak() -> None:
    old_approval = Inq(1, "approved", T0, level="enhanced", decided_at=T0)
    reconsented = T0 + timedelta(days=2)
    assert standing.speaking_inquiry([old_approval], since=reconsented) is None, "an old approval never comes back"
    new = Inq(2, "pending", reconsented)  # created at the new consent itself: it counts
    assert standing.speaking_inquiry([old_approval, new], since=reconsented) is new
    again = Inq(3, "approved", reconsented + timedelta(minutes=5), decided_at=reconsented + timedelta(minutes=9))
    assert standing.speaking_inquiry([old_approval, new, again], since=reconsented) is again
