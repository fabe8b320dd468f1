"""SQLAlchemy 2 typed models. Every schema change goes through an Alembic revision in migrations/."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored naive (MySQL has no zone) with
    microseconds (MySQL's DATETIME drops them unless fsp=6; ordering needs Persona's milliseconds)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        return None if value is None else value.replace(tzinfo=timezone.utc)


BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Contact(Base):
    """A person the bridge knows: just what the CRM sync and the admin view need."""

    __tablename__ = "kyc_contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)  # normalised; None once erased
    first_name: Mapped[str | None] = mapped_column(String(100))
    # Opaque id sent to Persona instead of the email; webhooks carry it back.
    reference_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    wp_user_id: Mapped[int | None] = mapped_column(BigInteger())
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A new consent after a withdrawal: only inquiries created from then on speak for the person
    # (bridge/kyc/standing.py); None when they never withdrew.
    standing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Inquiry(Base):
    """One Persona inquiry and its single truthful KYC state."""

    __tablename__ = "kyc_inquiries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inquiry_id: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("kyc_contacts.id"), index=True)
    reference_id: Mapped[str | None] = mapped_column(String(128))
    template_id: Mapped[str | None] = mapped_column(String(64))
    user_type: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # created-at of the deciding event
    decided_by: Mapped[str | None] = mapped_column(String(64))  # that event's id
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Continuous monitoring (bridge.kyc.monitoring): the report match in force, and the newest report
    # event applied (ordering, as decided_at is for the status).
    monitoring_kind: Mapped[str | None] = mapped_column(String(32))
    monitoring_report_id: Mapped[str | None] = mapped_column(String(64))
    monitoring_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    monitoring_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Renewals (bridge.kyc.renewal): the deadline at which the renewal pass recorded this approval's
    # lapse (audit, CRM sync, n8n event), so it happens once. The rule itself needs no column.
    lapsed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The review SLA (bridge.outbox.review_sla): the time the review case entered review whose
    # `kyc.review_overdue` alert was queued; a new case (a later time) may be alerted again.
    review_overdue_for: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, index=True)


class Event(Base):
    """Every webhook event received, once (the unique event id is the dedupe and replay defence)."""

    __tablename__ = "kyc_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    inquiry_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # Persona's created-at
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    applied: Mapped[bool] = mapped_column(default=False)  # it decided the inquiry's state
    payload: Mapped[str | None] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"))


class Job(Base):
    """The outbox: work for the worker, written in the same transaction as the state it follows."""

    __tablename__ = "kyc_jobs"
    __table_args__ = (Index("ix_kyc_jobs_due", "state", "run_after"),
                      Index("ix_kyc_jobs_inquiry_work", "inquiry_id", "kind", "state"),
                      Index("ix_kyc_jobs_contact_key", "contact_key", "state"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    inquiry_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text(), default="{}")  # JSON: ids only
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|dead
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column()
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))
    # The person whose FluentCRM contact the job writes: one such job per key runs at a time.
    contact_key: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text())
    result: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """Hash-chained audit log: ids and statuses only, so erasing a person never breaks the chain."""

    __tablename__ = "kyc_audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text())  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's last position. Locking it serialises appends across processes."""

    __tablename__ = "kyc_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class Consent(Base):
    """What a person agreed to before anything went to Persona: which boxes, which text, when, from where."""

    __tablename__ = "kyc_consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("kyc_contacts.id"), index=True)
    user_type: Mapped[str] = mapped_column(String(32))
    share_with_persona: Mapped[bool] = mapped_column()
    persona_retention: Mapped[bool] = mapped_column()
    gdpr_processing: Mapped[bool] = mapped_column()
    text_version: Mapped[str] = mapped_column(String(64))
    text_sha256: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))  # keyed hash, never the address
    user_agent: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # api | link
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class VerificationSession(Base):
    """One start of the Persona flow: a new inquiry (an attempt) or a resumed one."""

    __tablename__ = "kyc_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("kyc_contacts.id"), index=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("kyc_consents.id"))
    user_type: Mapped[str] = mapped_column(String(32))
    inquiry_id: Mapped[str | None] = mapped_column(String(64))
    resumed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Link(Base):
    """A signed verification link; the token carries only `link_id`, never the email."""

    __tablename__ = "kyc_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[str] = mapped_column(String(32), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("kyc_contacts.id"), index=True)
    user_type: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reminder(Base):
    """A `kyc.stalled` reminder queued for one window: (contact, user type, the start or last
    activity the wait counts from, hours). The unique key is what keeps `kyc-bridge remind` from ever
    reminding twice for one window, however often cron runs it."""

    __tablename__ = "kyc_reminders"
    __table_args__ = (UniqueConstraint("contact_id", "user_type", "anchor_at", "window_hours",
                                       name="uq_kyc_reminders_window"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("kyc_contacts.id"))
    user_type: Mapped[str] = mapped_column(String(32))
    inquiry_id: Mapped[str | None] = mapped_column(String(64))  # the unfinished inquiry, if one was started
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window_hours: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RenewalNotice(Base):
    """A `kyc.renewal_due` notice queued for one window before an approval's deadline: (approval,
    deadline, days before it). The unique key keeps the renewal pass from sending a window twice,
    however often it runs; a changed `reverify_after_days` moves the deadline, so new notices follow."""

    __tablename__ = "kyc_renewal_notices"
    __table_args__ = (UniqueConstraint("inquiry_id", "deadline_at", "window_days", name="uq_kyc_renewal_notices_window"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("kyc_contacts.id"), index=True)
    inquiry_id: Mapped[str] = mapped_column(String(64))  # the approval that lapses
    user_type: Mapped[str] = mapped_column(String(32))
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window_days: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Lease(Base):
    """Who runs an upkeep task now (`holder` until `expires_at`) and when it last ran: one runner
    at a time across processes and hosts (bridge/store/leases.py)."""

    __tablename__ = "kyc_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ContactLease(Base):
    """Who may write a person's FluentCRM contact now: the one job holding the key's live lease
    (bridge/store/queue.py takes it with a conditional UPDATE, so two claimers never both get it)."""

    __tablename__ = "kyc_contact_leases"

    contact_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(BigId)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
