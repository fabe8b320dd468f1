"""What the store can hold, read off the models' columns: the one place the intake's checks and the
trimming of display text take their lengths from."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, String

from bridge.persona.events import StoreLimits
from bridge.store.models import AuditEntry, Consent, Contact, Event, Inquiry, Job


def _length(*columns: Column) -> int:  # type: ignore[type-arg]
    """The shortest of the columns a value goes into."""
    lengths = [c.type.length for c in columns if isinstance(c.type, String)]
    assert lengths and all(lengths), columns
    return min(lengths)  # type: ignore[type-var]


_events, _inquiries, _contacts = Event.__table__.c, Inquiry.__table__.c, Contact.__table__.c

FIRST_NAME_LENGTH = _length(_contacts.first_name)
USER_AGENT_LENGTH = _length(Consent.__table__.c.user_agent)
WP_USER_ID_MAX = 2 ** 63 - 1  # kyc_contacts.wp_user_id is a BIGINT on MariaDB and PostgreSQL

EVENT_LIMITS = StoreLimits(
    event_id=_length(_events.event_id, _inquiries.decided_by),  # the deciding event's id
    event_name=_length(_events.name),
    inquiry_id=_length(_events.inquiry_id, _inquiries.inquiry_id, Job.__table__.c.inquiry_id,
                       AuditEntry.__table__.c.subject),
    reference_id=_length(_inquiries.reference_id),
    template_id=_length(_inquiries.template_id),
    first_name=FIRST_NAME_LENGTH,
    # MariaDB's DATETIME range; PostgreSQL's and SQLite's are wider
    earliest=datetime(1000, 1, 1, tzinfo=timezone.utc),
    latest=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
)
