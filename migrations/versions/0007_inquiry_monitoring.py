"""Continuous monitoring: the report match in force on an inquiry, and the newest report event applied.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kyc_inquiries") as batch:
        batch.add_column(sa.Column("monitoring_kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("monitoring_report_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("monitoring_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("monitoring_event_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kyc_inquiries") as batch:
        for column in ("monitoring_event_at", "monitoring_since", "monitoring_report_id", "monitoring_kind"):
            batch.drop_column(column)
