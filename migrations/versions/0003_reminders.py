"""Stalled-verification reminders sent per window (`kyc-bridge remind`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kyc_reminders",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("contact_id", BigId, sa.ForeignKey("kyc_contacts.id", name="fk_kyc_reminders_contact"),
                  nullable=False),
        sa.Column("user_type", sa.String(32), nullable=False),
        sa.Column("inquiry_id", sa.String(64), nullable=True),
        sa.Column("anchor_at", UTCDateTime(), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("contact_id", "user_type", "anchor_at", "window_hours", name="uq_kyc_reminders_window"),
    )


def downgrade() -> None:
    op.drop_table("kyc_reminders")
