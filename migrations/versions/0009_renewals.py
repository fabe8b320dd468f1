"""Renewals: when an approval's lapse was recorded, and the renewal notices sent per window.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("kyc_inquiries") as batch:
        batch.add_column(sa.Column("lapsed_at", UTCDateTime(), nullable=True))
    op.create_table(
        "kyc_renewal_notices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("contact_id", BigId, sa.ForeignKey("kyc_contacts.id", name="fk_kyc_renewal_notices_contact"),
                  nullable=False),
        sa.Column("inquiry_id", sa.String(64), nullable=False),
        sa.Column("user_type", sa.String(32), nullable=False),
        sa.Column("deadline_at", UTCDateTime(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("inquiry_id", "deadline_at", "window_days", name="uq_kyc_renewal_notices_window"),
    )
    op.create_index("ix_kyc_renewal_notices_contact_id", "kyc_renewal_notices", ["contact_id"])


def downgrade() -> None:
    op.drop_table("kyc_renewal_notices")  # with its index (MariaDB refuses to drop an index its foreign key uses)
    with op.batch_alter_table("kyc_inquiries") as batch:
        batch.drop_column("lapsed_at")
