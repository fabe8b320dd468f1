"""Privacy: keep webhook bodies only for the retention window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from bridge import audit
from bridge.store.models import Event


def purge_payloads(session: Session, *, before: datetime, now: datetime) -> int:
    result = session.execute(
        update(Event).where(Event.received_at < before, Event.payload.is_not(None)).values(payload=None)
    )
    count = result.rowcount or 0
    if count:
        audit.append(session, "retention.purged", "kyc_events", {"count": count}, at=now)
    return count
