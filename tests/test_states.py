"""The state rule (pure): status names, ordering by created-at, ties."""

from datetime import datetime, timedelta, timezone

import pytest

from bridge.kyc.states import InquiryState, Status, apply, normalize_status, status_of_event

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("raw, expected", [
    ("created", Status.CREATED), ("pending", Status.PENDING), ("completed", Status.COMPLETED),
    ("needs_review", Status.NEEDS_REVIEW), ("needs-review", Status.NEEDS_REVIEW), ("Needs_Review", Status.NEEDS_REVIEW),
    ("approved", Status.APPROVED), ("declined", Status.DECLINED), ("failed", Status.FAILED),
    ("expired", Status.EXPIRED), ("started", None), ("not_started", None), ("", None), (None, None),
])
def test_normalize_status(raw, expected):
    assert normalize_status(raw) == expected


def test_status_of_event_prefers_payload_and_falls_back_to_name():
    assert status_of_event("inquiry.marked-for-review", "needs_review") == Status.NEEDS_REVIEW
    assert status_of_event("inquiry.approved", None) == Status.APPROVED
    assert status_of_event("inquiry.transitioned", "pending") == Status.PENDING
    assert status_of_event("inquiry.redacted", "approved") is None  # redaction never changes status
    assert status_of_event("verification.passed", "passed") is None
    assert status_of_event("inquiry.something-new", "weird") is None


def test_newer_event_applies_older_does_not():
    approved = apply(InquiryState(), Status.APPROVED, T0 + timedelta(minutes=5), "evt_b")
    assert approved.applied and approved.status_changed and approved.state.status is Status.APPROVED
    late = apply(approved.state, Status.COMPLETED, T0 + timedelta(minutes=4), "evt_a")
    assert not late.applied and late.state == approved.state


def test_same_event_again_changes_nothing():
    first = apply(InquiryState(), Status.PENDING, T0, "evt_a")
    again = apply(first.state, Status.PENDING, T0, "evt_a")
    assert not again.applied and not again.status_changed


def test_equal_timestamps_break_ties_by_lifecycle_then_id():
    a = apply(InquiryState(), Status.APPROVED, T0, "evt_a")
    b = apply(a.state, Status.COMPLETED, T0, "evt_b")
    assert b.state.status is Status.APPROVED
    c = apply(InquiryState(), Status.COMPLETED, T0, "evt_b")
    d = apply(c.state, Status.APPROVED, T0, "evt_a")
    assert d.state.status is Status.APPROVED


def test_newer_event_with_same_status_moves_decided_at_but_is_no_status_change():
    first = apply(InquiryState(), Status.APPROVED, T0, "evt_a")
    second = apply(first.state, Status.APPROVED, T0 + timedelta(seconds=1), "evt_b")
    assert second.applied and not second.status_changed and second.state.decided_by == "evt_b"
