"""Review SLA: the review case whose `kyc.review_overdue` alert was queued, per inquiry.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kyc_inquiries") as batch:
        batch.add_column(sa.Column("review_overdue_for", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kyc_inquiries") as batch:
        batch.drop_column("review_overdue_for")
