"""The spine: contacts, inquiries, events, outbox jobs, hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "kyc_contacts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("email", name="uq_kyc_contacts_email"),
    )
    op.create_table(
        "kyc_inquiries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("inquiry_id", sa.String(64), nullable=False),
        sa.Column("contact_id", BigId, sa.ForeignKey("kyc_contacts.id", name="fk_kyc_inquiries_contact"),
                  nullable=True),
        sa.Column("reference_id", sa.String(128), nullable=True),
        sa.Column("template_id", sa.String(64), nullable=True),
        sa.Column("user_type", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("redacted_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("inquiry_id", name="uq_kyc_inquiries_inquiry_id"),
    )
    op.create_index("ix_kyc_inquiries_contact_id", "kyc_inquiries", ["contact_id"])
    op.create_index("ix_kyc_inquiries_user_type", "kyc_inquiries", ["user_type"])
    op.create_index("ix_kyc_inquiries_status", "kyc_inquiries", ["status"])
    op.create_index("ix_kyc_inquiries_updated_at", "kyc_inquiries", ["updated_at"])

    op.create_table(
        "kyc_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("inquiry_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Text().with_variant(sa.dialects.mysql.MEDIUMTEXT(), "mysql", "mariadb"),
                  nullable=True),
        sa.UniqueConstraint("event_id", name="uq_kyc_events_event_id"),
    )
    op.create_index("ix_kyc_events_inquiry_id", "kyc_events", ["inquiry_id"])
    op.create_index("ix_kyc_events_received_at", "kyc_events", ["received_at"])

    op.create_table(
        "kyc_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("inquiry_id", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_kyc_jobs_due", "kyc_jobs", ["state", "run_after"])
    op.create_index("ix_kyc_jobs_inquiry_id", "kyc_jobs", ["inquiry_id"])

    op.create_table(
        "kyc_audit_log",
        sa.Column("seq", BigId, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "kyc_audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", BigId, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    for table in ("kyc_audit_head", "kyc_audit_log", "kyc_jobs", "kyc_events", "kyc_inquiries", "kyc_contacts"):
        op.drop_table(table)
